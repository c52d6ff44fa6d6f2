"""The mip plugin through the core: registration, configuration, clashes, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_mip import IntegratedPositionalEncoding, MipSampler

from atlas_core.api import ConfigError, Field, PluginError, RunConfig, hookimpl
from atlas_core.testing import Trainer, configure, load_plugins, run_cli

QUICK = ["--max-steps", "3", "--eval-views", "1", "--set", "eval.video_frames=0",
         "--set", "train.batch_rays=64", "--set", "sampler.samples=8"]  # fmt: skip


def test_entry_point_registers_encoding_and_sampler(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("mip",))
    assert loaded.registry.get("encodings", "ipe").plugin == "mip"
    assert loaded.registry.get("samplers", "mip").factory is MipSampler
    assert loaded.infos["mip"].distribution == "atlas-plugin-mip"
    assert "mip" not in load_plugins().infos  # installed is not enabled


def test_configure_picks_ipe_and_frustum_sampler_unless_chosen(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("mip",))
    config = RunConfig(plugins=["mip"])
    configure(config, loaded)
    assert (config.encoding.name, config.sampler.name) == ("ipe", "mip")
    assert config.train.coarse_weight == 0.1 and RunConfig().train.coarse_weight == 1.0
    chosen = RunConfig(plugins=["mip"])
    chosen.set("sampler", "stratified")
    chosen.set("train.coarse_weight", 0.5)
    configure(chosen, loaded)
    assert (chosen.encoding.name, chosen.sampler.name) == ("ipe", "stratified")
    assert chosen.train.coarse_weight == 0.5  # the user's weight wins


def test_shape_option_reaches_the_encoding(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    config = RunConfig(plugins=["mip"])
    config.data.path = str(atlas_scene)
    config.set("mip.shape", "cylinder")
    config.set("field.width", 16)
    trainer = Trainer(config, atlas_pm(enable=("mip",)), tmp_path / "run")
    encoding = trainer.pipeline.field.encoding
    assert isinstance(encoding, IntegratedPositionalEncoding) and encoding.shape == "cylinder"
    assert isinstance(trainer.pipeline.sampler, MipSampler)
    bad = RunConfig(plugins=["mip"])
    bad.set("mip.shape", "sphere")
    with pytest.raises(ConfigError, match="mip.shape"):
        configure(bad, atlas_pm(enable=("mip",)))


def test_cli_bad_shape_exits_2(atlas_scene: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), "--plugins", "mip"]
    assert run_cli([*args, "--set", "mip.shape=sphere", *QUICK]) == 2
    assert "mip.shape" in capsys.readouterr().err
    assert run_cli([*args, "--set", "mip.shap=cone", *QUICK]) == 2
    assert "mip.shap" in capsys.readouterr().err


class OwnEncodingField(Field):
    """A field that ignores the run's encoding."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)


class GridPlugin:
    """A stand-in for a plugin like ngp: its field brings its own encoding."""

    name = "grid"

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        register("grid", OwnEncodingField)

    @hookimpl
    def atlas_configure(self, config: RunConfig) -> None:
        config.field.name = "grid"


class FeaturesPlugin:
    """A stand-in for a plugin like fourier: it chooses the encoding too."""

    name = "features"

    @hookimpl
    def atlas_configure(self, config: RunConfig) -> None:
        config.encoding.name = "identity"


def test_field_without_the_encoding_stops_naming_both(
    atlas_pm, atlas_scene: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    config = RunConfig(plugins=["mip"])
    config.data.path = str(atlas_scene)
    with pytest.raises(PluginError, match="plugins 'mip' and '.*' clash on the encoding"):
        Trainer(config, atlas_pm(GridPlugin(), enable=("mip",)), tmp_path / "run")


def test_another_plugin_choosing_the_encoding_is_a_conflict(atlas_pm) -> None:  # noqa: ANN001
    with pytest.raises(PluginError, match="'mip' and 'features' both choose the encoding"):
        configure(RunConfig(plugins=["mip"]), atlas_pm(FeaturesPlugin(), enable=("mip",)))


def test_with_ngp_the_hash_grid_antialiases(atlas_scene: Path, tmp_path: Path) -> None:
    """Zip-NeRF style: ngp keeps its field and occupancy sampler and integrates frustums."""
    pytest.importorskip("atlas_plugin_ngp")
    out = tmp_path / "r"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "mip,ngp",
            "--max-steps", "3", "--eval-views", "1", "--set", "eval.video_frames=0",
            "--set", "mip.multisamples=2", "--set", "field.levels=4",
            "--set", "field.log2_table=10"]  # fmt: skip
    assert run_cli(args) == 0
    text = (out / "config.toml").read_text()
    assert 'name = "occupancy"' in text and 'name = "ngp"' in text
    config = RunConfig(plugins=["mip", "ngp"])
    config.data.path = str(atlas_scene)
    config.set("mip.multisamples", 2)
    trainer = Trainer(config, load_plugins(["mip", "ngp"]), tmp_path / "t")
    assert trainer.pipeline.field.multisamples == 2  # the option reaches the hash grid
    config = RunConfig(plugins=["mip", "ngp"])
    config.data.path = str(atlas_scene)
    trainer = Trainer(config, load_plugins(["mip", "ngp"]), tmp_path / "d")
    assert trainer.pipeline.field.multisamples == 1  # ngp's own count by default
    config = RunConfig(plugins=["ngp"])
    config.data.path = str(atlas_scene)
    assert Trainer(config, load_plugins(["ngp"]), tmp_path / "u").pipeline.field.multisamples == 0


def test_multisamples_must_be_positive(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig(plugins=["mip"])
    config.set("mip.multisamples", -1)
    with pytest.raises(ConfigError, match="multisamples must be >= 0"):
        configure(config, atlas_pm(enable=("mip",)))


def test_cli_run_with_the_nerf_field_and_cylinders(atlas_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "mip",
            "--set", "field=plain", "--set", "field.depth=2", "--set", "field.width=16",
            "--set", "field.skips=[]", "--set", "mip.shape=cylinder", *QUICK]  # fmt: skip
    assert run_cli(args) == 0
    text = (out / "config.toml").read_text()
    assert '[mip]\nshape = "cylinder"' in text and 'name = "ipe"' in text


def test_training_raises_psnr(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """200 steps on the 24x24 scene; measured 9.5 -> 18.9 dB on CPU; assert +5."""
    torch.manual_seed(0)
    config = RunConfig(plugins=["mip"])
    config.data.path = str(atlas_scene)
    settings = {"train.max_steps": 200, "train.batch_rays": 128, "sampler.samples": 16,
                "train.lr": 1e-2, "eval.views": 3, "eval.video_frames": 0}  # fmt: skip
    for key, value in settings.items():
        config.set(key, value)
    trainer = Trainer(config, atlas_pm(enable=("mip",)), tmp_path / "run")
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 5.0, (before, after)


def test_rays_stay_in_world_space(atlas_pm, atlas_scene: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """mip keeps world rays (data.ndc/contract false) unless set; set, the run stops."""
    loaded = atlas_pm(enable=("mip",))
    config = RunConfig(plugins=["mip"])
    configure(config, loaded)
    assert config.data.ndc is False and config.data.contract is False
    chosen = RunConfig(plugins=["mip"])
    chosen.set("data.contract", True)
    configure(chosen, loaded)
    assert chosen.data.contract is True  # the user's choice is kept ...
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), "--plugins", "mip"]
    assert run_cli([*args, "--set", "data.contract=true", *QUICK]) == 2  # ... and refused
    assert "plugin 'mip'" in capsys.readouterr().err
