"""The siren plugin through the core: registration, configuration, runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_siren import SirenEncoding, SirenField

from atlas_core.api import PluginError, RunConfig, hookimpl
from atlas_core.testing import Trainer, configure, load_plugins, run_cli


def test_entry_point_registers_encoding_and_field(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("siren",))
    assert loaded.registry.get("encodings", "siren").factory is SirenEncoding
    assert loaded.registry.get("fields", "siren").factory is SirenField
    assert loaded.infos["siren"].distribution == "atlas-plugin-siren"
    assert loaded.infos["siren"].components == {"encodings": ["siren"], "fields": ["siren"]}
    assert "siren" not in load_plugins().infos  # installed is not enabled


def test_configure_fills_only_a_default_encoding(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("siren",))
    config = RunConfig()
    configure(config, loaded)
    assert (config.encoding.name, config.field.name) == ("siren", "tiny")
    explicit = RunConfig()
    explicit.set("encoding", "positional")
    configure(explicit, loaded)
    assert explicit.encoding.name == "positional"


class EncodingChooser:
    """Another plugin that fills the encoding slot."""

    name = "chooser"

    @hookimpl
    def atlas_configure(self, config) -> None:  # noqa: ANN001
        config.encoding.name = "identity"


def test_another_encoding_claim_clashes_in_either_order(atlas_pm) -> None:  # noqa: ANN001
    import atlas_plugin_siren

    for order in ((EncodingChooser(), atlas_plugin_siren), (atlas_plugin_siren, EncodingChooser())):
        with pytest.raises(PluginError, match="both choose the encoding"):
            configure(RunConfig(), atlas_pm(*order))
    chosen = RunConfig()
    chosen.set("encoding", "positional")
    configure(chosen, atlas_pm(EncodingChooser(), atlas_plugin_siren))
    assert chosen.encoding.name == "positional"


def make_trainer(scene: Path, out: Path, **settings: object) -> Trainer:
    config = RunConfig()
    config.data.path = str(scene)
    config.plugins = ["siren"]
    for key, value in settings.items():
        config.set(key, value)
    return Trainer(config, load_plugins(["siren"]), out)


def test_field_learns_at_a_scaled_rate(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    trainer = make_trainer(atlas_scene, tmp_path / "r", **{"field": "siren", "field.width": 8,
                           "field.lr_scale": 0.5, "encoding.features": 8})  # fmt: skip
    field = trainer.pipeline.field
    rates = {group["lr_scale"]: len(group["params"]) for group in trainer.optimizer.param_groups}
    assert rates == {0.5: len(list(field.parameters())) - 2, 1.0: 2}  # encoding W, b at 1.0
    assert isinstance(field.encoding, SirenEncoding)


def test_cli_runs_and_checks_options(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    base = ["run", "--data", str(atlas_scene), "--plugins", "siren", "--max-steps", "3",
            "--eval-views", "1", "--set", "eval.video_frames=0", "--set", "train.batch_rays=64",
            "--set", "sampler.samples=8", "--set", "encoding.features=16"]  # fmt: skip
    out = tmp_path / "enc"
    assert run_cli([*base, "--out", str(out), "--set", "field.width=16"]) == 0
    assert 'name = "siren"' in (out / "config.toml").read_text()
    out = tmp_path / "field"
    assert (
        run_cli([*base, "--out", str(out), "--set", "field=siren", "--set", "field.depth=2"]) == 0
    )
    assert (out / "config.toml").read_text().count('name = "siren"') == 2
    bad = ["--set", "field=siren", "--set", "field.lr_scale=0.0"]
    assert run_cli([*base, "--out", str(tmp_path / "bad"), *bad]) == 2
    assert run_cli([*base, "--out", str(tmp_path / "w0"), "--set", "encoding.w0=-1.0"]) == 2


def test_training_raises_psnr(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """80 steps on the 24x24 scene: measured 10.2 -> 18.4 dB (tiny field: 9.5 -> 13.0)."""
    torch.manual_seed(0)
    trainer = make_trainer(atlas_scene, tmp_path / "fit", **{"field": "siren", "field.width": 64,
        "encoding.features": 64, "train.max_steps": 80, "train.batch_rays": 512,
        "sampler.samples": 24, "eval.views": 3, "eval.video_frames": 0})  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 6.0, (before, after)
