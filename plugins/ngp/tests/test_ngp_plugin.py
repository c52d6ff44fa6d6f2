"""The ngp plugin through the core: registration, configuration, runs."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import torch
from atlas_plugin_ngp import SAMPLER_DEFAULTS, TARGET_SAMPLES, HashEncoding, NGPField

from atlas_core.api import RunConfig
from atlas_core.testing import configure, load_plugins, run_cli


def test_entry_point_registers_field_and_encoding(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("ngp",))
    field = loaded.registry.get("fields", "ngp")
    encoding = loaded.registry.get("encodings", "hash")
    assert field.factory is NGPField and field.plugin == "ngp"
    assert encoding.factory is HashEncoding and encoding.plugin == "ngp"
    assert loaded.infos["ngp"].distribution == "atlas-plugin-ngp"
    assert loaded.infos["ngp"].components == {"encodings": ["hash"], "fields": ["ngp"]}
    assert "ngp" not in load_plugins().infos  # installed is not enabled


def test_configure_claims_the_field_and_occupancy_sampling(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("ngp",))
    config = RunConfig()
    configure(config, loaded)
    assert config.field.name == "ngp" and config.sampler.name == "occupancy"
    assert config.train.target_samples == TARGET_SAMPLES
    assert config.sampler.options == SAMPLER_DEFAULTS
    assert SAMPLER_DEFAULTS == {"update_every": 64, "decay": 0.5}  # measured, see the plugin
    assert (config.train.lr, config.train.beta2, config.train.eps) == (1e-2, 0.99, 1e-15)
    refresh = RunConfig()
    refresh.set("sampler.update_every", 8)
    configure(refresh, loaded)
    assert refresh.sampler.name == "occupancy" and refresh.sampler.options["update_every"] == 8
    kept = RunConfig()  # sampler options, a sample budget or Adam settings the user set stay
    kept.set("sampler.samples", 16)
    kept.set("train.target_samples", 0)
    kept.set("train.lr", 3e-3)
    kept.set("train.eps", 1e-8)
    configure(kept, loaded)
    assert kept.sampler.name == "stratified" and kept.train.target_samples == 0
    assert (kept.train.lr, kept.train.beta2, kept.train.eps) == (3e-3, 0.99, 1e-8)
    chosen = RunConfig()
    chosen.set("field", "plain")
    configure(chosen, loaded)
    assert chosen.field.name == "plain"
    explicit_tiny = RunConfig()
    explicit_tiny.set("field", "tiny")
    configure(explicit_tiny, loaded)
    assert explicit_tiny.field.name == "tiny" and explicit_tiny.sampler.name == "stratified"


def test_hash_encoding_on_another_field_gets_occupancy_sampling(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("ngp",))
    config = RunConfig()
    config.set("field", "tiny")
    config.set("encoding", "hash")
    configure(config, loaded)
    assert config.sampler.name == "occupancy" and config.train.target_samples == TARGET_SAMPLES
    assert config.train.lr == RunConfig().train.lr  # Instant-NGP's Adam is for its own field
    kept = RunConfig()
    kept.set("field", "tiny")
    kept.set("encoding", "hash")
    kept.set("sampler", "hierarchical")
    configure(kept, loaded)
    assert kept.sampler.name == "hierarchical"


def test_field_options_are_checked(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    base = ["run", "--data", str(atlas_scene), "--plugins", "ngp", "--max-steps", "1"]
    assert run_cli([*base, "--out", str(tmp_path / "a"), "--set", "field.levels=0"]) == 2
    assert run_cli([*base, "--out", str(tmp_path / "b"), "--set", "field.width=16"]) == 2


def test_cli_run_end_to_end(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "ngp",
            "--max-steps", "40", "--eval-views", "1", "--set", "eval.video_frames=0",
            "--set", "train.batch_rays=512", "--set", "sampler.samples=16"]  # fmt: skip
    assert run_cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 40 and metrics["plugins"]["ngp"] == version("atlas-plugin-ngp")
    assert "[field]" in (out / "config.toml").read_text()
    assert 'name = "ngp"' in (out / "config.toml").read_text()


def test_hash_encoding_feeds_the_tiny_field(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "tiny-hash"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "ngp",
            "--set", "field=tiny", "--set", "encoding=hash", "--set", "encoding.levels=4",
            "--set", "encoding.log2_table=12", "--max-steps", "3", "--eval-views", "1",
            "--set", "eval.video_frames=0", "--set", "train.batch_rays=64",
            "--set", "sampler.samples=8"]  # fmt: skip
    assert run_cli(args) == 0
    assert 'name = "hash"' in (out / "config.toml").read_text()


def test_training_raises_psnr(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """100 steps on the 24x24 scene: measured 9.8 -> 18.4 dB (+8.6) on CPU; assert +6."""
    from atlas_core.testing import Trainer

    torch.manual_seed(0)
    config = RunConfig()
    config.data.path = str(atlas_scene)
    settings = {"train.max_steps": 100, "train.batch_rays": 512, "sampler.samples": 24,
                "train.lr": 2e-2, "eval.views": 3, "eval.video_frames": 0, "field.levels": 8,
                "field.log2_table": 14, "field.finest_resolution": 128}  # fmt: skip
    for key, value in settings.items():
        config.set(key, value)
    trainer = Trainer(config, atlas_pm(enable=("ngp",)), tmp_path / "run")
    assert type(trainer.pipeline.field).__name__ == "NGPField"
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 6.0, (before, after)


def test_runs_with_the_occupancy_sampler(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "occ"), "--plugins", "ngp",
            "--set", "sampler=occupancy", "--set", "sampler.resolution=32",
            "--set", "field.precision=bfloat16",
            "--max-steps", "20", "--eval-views", "1", "--set", "eval.video_frames=0",
            "--set", "train.batch_rays=256"]  # fmt: skip
    assert run_cli(args) == 0


def test_sdf_fields_on_the_hash_encoding_keep_the_default_sampler(atlas_pm) -> None:  # noqa: ANN001
    import atlas_plugin_ngp

    class SDFField(torch.nn.Module):
        def sdf(self, positions: torch.Tensor) -> torch.Tensor:
            return positions.norm(dim=-1, keepdim=True) - 0.5

    loaded = atlas_pm(enable=("ngp",))
    for field, expected in ((SDFField(), "stratified"), (torch.nn.Linear(3, 3), "occupancy")):
        config = RunConfig()
        config.set("field", "tiny")
        config.set("encoding", "hash")
        configure(config, loaded)
        atlas_plugin_ngp.atlas_wrap_field(field, config)
        assert config.sampler.name == expected
        samples = TARGET_SAMPLES if expected == "occupancy" else RunConfig().train.target_samples
        assert config.train.target_samples == samples
    tuned = RunConfig()  # options set for the occupancy sampler keep it
    tuned.set("field", "tiny")
    tuned.set("encoding", "hash")
    tuned.set("sampler.resolution", 32)
    configure(tuned, loaded)
    atlas_plugin_ngp.atlas_wrap_field(SDFField(), tuned)
    assert tuned.sampler.name == "occupancy"
    own = RunConfig()  # the ngp field itself is never touched
    configure(own, loaded)
    atlas_plugin_ngp.atlas_wrap_field(SDFField(), own)
    assert own.sampler.name == "occupancy"
