"""The plugin end to end: registration, configure, the CLI, learning, dnerf, its imports."""

from __future__ import annotations

import json
from pathlib import Path

import atlas_plugin_rig
import pytest
import torch
from atlas_plugin_rig import NAME, SAMPLER_OPTIONS, TARGET_SAMPLES, RigField

from atlas_core.api import RunConfig, has_density, parameter_tags
from atlas_core.testing import Trainer, configure, import_violations, requires_plugins, run_cli

PLUGIN = Path(atlas_plugin_rig.__file__).parent
SMALL = {
    "field.points": 4096,
    "field.width": 32,
    "train.batch_rays": 256,
    "train.target_samples": 8192,
    "sampler.resolution": 32,
    "eval.views": 1,
    "eval.video_frames": 0,
}


def trainer_for(atlas_pm, scene: Path, out: Path, **sets: object) -> Trainer:  # noqa: ANN001
    config = RunConfig()
    config.data.path = str(scene)
    for key, value in {**SMALL, **{k.replace("__", "."): v for k, v in sets.items()}}.items():
        config.set(key, value)
    return Trainer(config, atlas_pm(atlas_plugin_rig), out)


def test_entry_point_registers_the_field(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("rig",))
    assert loaded.registry.get("fields", "rig").factory is RigField
    assert loaded.infos["rig"].components == {"fields": ["rig"]}


def test_configure_claims_the_field_and_occupancy_sampling(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    configure(config, atlas_pm(atlas_plugin_rig))
    assert config.field.name == NAME and config.sampler.name == "occupancy"
    assert {k: config.sampler.options[k] for k in SAMPLER_OPTIONS} == SAMPLER_OPTIONS
    assert config.train.target_samples == TARGET_SAMPLES


def test_configure_keeps_user_choices(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    config.set("field", "tiny")  # the default name, but chosen explicitly
    configure(config, atlas_pm(atlas_plugin_rig))
    assert config.field.name == "tiny" and config.sampler.name == "stratified"
    assert not config.sampler.options and not config.train.target_samples
    config = RunConfig()
    config.set("sampler", "stratified")
    config.set("train.target_samples", 0)
    configure(config, atlas_pm(atlas_plugin_rig))
    assert config.field.name == NAME and config.sampler.name == "stratified"
    assert not config.sampler.options and config.train.target_samples == 0
    config = RunConfig()
    config.set("sampler.resolution", 16)
    configure(config, atlas_pm(atlas_plugin_rig))
    assert config.sampler.name == "occupancy" and config.sampler.options["resolution"] == 16


def test_optimizer_groups_follow_the_tags(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    trainer = trainer_for(atlas_pm, atlas_scene, tmp_path / "run", field__feature_lr_scale=4.0,
                          field__position_lr_scale=0.5)  # fmt: skip
    field = trainer.pipeline.field
    scales = {}
    for group in trainer.optimizer.param_groups:
        for param in group["params"]:
            scales[id(param)] = group["lr_scale"]
    assert scales[id(field.features)] == 4.0 and scales[id(field.positions)] == 0.5
    assert type(trainer.optimizer).__name__ == "MaskedAdam"  # sparse feature rows
    assert parameter_tags(field.features).masked_updates


def test_training_moves_points_and_resumes(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    first = trainer_for(atlas_pm, atlas_scene, out, train__max_steps=4)
    start = first.pipeline.field.positions.detach().clone()
    features = first.pipeline.field.features.detach().clone()
    first.fit()
    field = first.pipeline.field
    assert first.faults.skipped == 0
    assert not torch.equal(field.positions.detach(), start)
    assert not torch.equal(field.features.detach(), features)
    resumed = trainer_for(atlas_pm, atlas_scene, out, train__max_steps=6)
    assert resumed.restore() and resumed.step == 4
    assert torch.equal(resumed.pipeline.field.positions, field.positions)
    resumed.fit()
    assert resumed.step == 6


def test_cli_run_in_process(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "rig",
            "--max-steps", "8", "--eval-views", "1", "--set", "eval.video_frames=0",
            "--set", "field.points=2048", "--set", "field.width=16",
            "--set", "sampler.resolution=16", "--set", "train.target_samples=4096"]  # fmt: skip
    assert run_cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["plugins"]["rig"] == atlas_plugin_rig.__version__
    written = (out / "config.toml").read_text()
    assert '[field]\nname = "rig"' in written and '[sampler]\nname = "occupancy"' in written


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("field.neighbours=99", "neighbours must be at most 16"),
        ("field.layout=hex", "field.layout"),
        ("field.step=0", "step must be > 0"),
        ("field.position_lr_scale=-1", "position_lr_scale must be >= 0"),
    ],
)
def test_bad_options_stop_with_one_line(atlas_scene, tmp_path, capsys, setting, message) -> None:  # noqa: ANN001
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), "--plugins", "rig",
            "--max-steps", "1", "--set", setting]  # fmt: skip
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


MARGIN_DB = 8.0  # measured: about +13 dB (11.0 -> 24.3 dB) in 100 steps on the 24x24 scene


@pytest.mark.slow
def test_psnr_rises(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    trainer = trainer_for(atlas_pm, atlas_scene, tmp_path / "run", train__max_steps=100,
                          data__bound=1.2, eval__views=0)  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    print(f"rig on the generated scene: {before:.2f} -> {after:.2f} dB")
    assert after - before >= MARGIN_DB, (before, after)


@pytest.fixture(scope="module")
def moving_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 scene of the dnerf data kind, written by ``atlas data synth``."""
    out = tmp_path_factory.mktemp("rig-dnerf") / "scene"
    assert run_cli(["data", "synth", str(out), "--kind", "dnerf", "--size", "16"]) == 0
    return out


@requires_plugins("dnerf")
@pytest.mark.slow
def test_trains_under_dnerf(atlas_pm, moving_scene, tmp_path) -> None:  # noqa: ANN001
    """``--plugins dnerf,rig --data-kind dnerf``: the deformation wraps the rig field, keeps
    its density() for the occupancy grid, and both learn."""
    out = tmp_path / "r"
    args = ["run", "--data", str(moving_scene), "--data-kind", "dnerf", "--out", str(out),
            "--plugins", "dnerf,rig", "--max-steps", "12", "--eval-views", "1",
            "--set", "eval.video_frames=0", "--set", "field.points=2048",
            "--set", "field.width=16", "--set", "dnerf.width=16",
            "--set", "sampler.resolution=16", "--set", "train.target_samples=4096"]  # fmt: skip
    assert run_cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 12 and {"dnerf", "rig"} <= set(metrics["plugins"])
    written = (out / "config.toml").read_text()
    assert '[field]\nname = "rig"' in written and '[sampler]\nname = "occupancy"' in written
    config = RunConfig()
    config.data.path, config.data.kind = str(moving_scene), "dnerf"
    config.plugins = ["dnerf", "rig"]
    for key, value in {**SMALL, "field.points": 2048, "dnerf.width": 16}.items():
        config.set(key, value)
    trainer = Trainer(config, atlas_pm(enable=("dnerf", "rig")), tmp_path / "t")
    field = trainer.pipeline.field
    inner = [m for m in field.modules() if isinstance(m, RigField)]
    assert len(inner) == 1 and field is not inner[0] and has_density(field)
    motion = [p for name, p in field.named_parameters() if name.startswith("deformation")]
    assert motion
    before = [p.detach().clone() for p in motion]
    trainer.config.train.max_steps = 3
    trainer.fit()
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, motion, strict=True))


def test_imports_only_the_public_api() -> None:
    """The package and its tests import only the core's public modules (the core's rule)."""
    assert import_violations(PLUGIN.parent) == []
