"""The nerfae plugin through the core: configuration, the latent loss, composition."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_nerfae import LATENT_L2, LatentL2Loss, NeRFAEField

from atlas_core.api import ConfigError, RunConfig
from atlas_core.testing import Trainer, configure, load_plugins, run_cli

QUICK = ["--max-steps", "3", "--eval-views", "1", "--set", "eval.video_frames=0",
         "--set", "train.batch_rays=64", "--set", "sampler.samples=8",
         "--set", "field.width=16"]  # fmt: skip


def make_trainer(atlas_pm, scene: Path, out: Path, enable=("nerfae",), **settings) -> Trainer:  # noqa: ANN001
    """A Trainer for a small nerfae run with ``settings`` as ``--set`` pairs."""
    config = RunConfig(plugins=list(enable))
    config.data.path = str(scene)
    base = {"train.batch_rays": 128, "sampler.samples": 16, "eval.views": 3,
            "eval.video_frames": 0, "field.width": 32, "train.lr": 1e-2}  # fmt: skip
    for key, value in {**base, **settings}.items():
        config.set(key, value)
    return Trainer(config, atlas_pm(enable=enable), out)


def test_entry_point_registers_field_and_loss(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("nerfae",))
    assert loaded.registry.get("fields", "nerfae").factory is NeRFAEField
    assert loaded.registry.get("losses", "latent_l2").factory is LatentL2Loss
    assert loaded.infos["nerfae"].distribution == "atlas-plugin-nerfae"
    assert "nerfae" not in load_plugins().infos


def test_configure_picks_the_field_and_adds_the_penalty(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("nerfae",))
    config = RunConfig(plugins=["nerfae"])
    configure(config, loaded)
    assert config.field.name == "nerfae" and config.losses["latent_l2"] == LATENT_L2
    weighted = RunConfig(plugins=["nerfae"])
    weighted.set("losses.latent_l2", 0.5)
    configure(weighted, loaded)
    assert weighted.losses["latent_l2"] == 0.5
    chosen = RunConfig(plugins=["nerfae"])
    chosen.set("field", "plain")
    configure(chosen, loaded)
    assert chosen.field.name == "plain" and "latent_l2" not in chosen.losses
    unit = RunConfig(plugins=["nerfae"])
    unit.set("field.normalization", "l2")
    configure(unit, loaded)
    assert unit.field.name == "nerfae" and "latent_l2" not in unit.losses


def test_latent_loss_needs_unnormalised_nerfae_latents(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="loss 'latent_l2': needs the nerfae field"):
        make_trainer(atlas_pm, atlas_scene, tmp_path / "a", field="tiny", **{"losses.latent_l2": 1})
    unit = {"field.normalization": "l2", "losses.latent_l2": 1}
    with pytest.raises(ConfigError, match="penalty is constant"):
        make_trainer(atlas_pm, atlas_scene, tmp_path / "b", **unit)


def test_cli_errors_exit_2(atlas_scene: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    base = ["run", "--data", str(atlas_scene), "--plugins", "nerfae", *QUICK]
    assert run_cli([*base, "--out", str(tmp_path / "a"), "--set", "field.normalization=batch"]) == 2
    assert "field.normalization" in capsys.readouterr().err
    assert run_cli([*base, "--out", str(tmp_path / "b"), "--set", "field.latent_size=0"]) == 2
    assert "latent_size" in capsys.readouterr().err


def mean_square_latent(trainer: Trainer) -> float:
    """Mean squared latent over one batch of training rays."""
    torch.manual_seed(1)
    with torch.no_grad():
        _, field_outputs = trainer.pipeline(trainer.sample_batch())
    return field_outputs["latent"].square().mean().item()


@pytest.mark.parametrize("normalization", ["none", "layer"])
def test_penalty_weight_shrinks_latents(atlas_pm, atlas_scene, tmp_path, normalization) -> None:  # noqa: ANN001
    values = {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        options = {"losses.latent_l2": weight, "field.normalization": normalization}
        trainer = make_trainer(atlas_pm, atlas_scene, tmp_path / f"w{weight}", **options)
        trainer.config.train.max_steps = 40
        trainer.fit()
        values[weight] = mean_square_latent(trainer)
    assert values[10.0] < 0.7 * values[0.0], values


@pytest.mark.parametrize("latent_size", [4, 24])
def test_latent_size(atlas_pm, atlas_scene, tmp_path, latent_size) -> None:  # noqa: ANN001
    trainer = make_trainer(
        atlas_pm, atlas_scene, tmp_path / "r", **{"field.latent_size": latent_size}
    )
    field = trainer.pipeline.field
    assert field.density_decoder[0].in_features == latent_size
    assert field.encoder[-1].out_features == latent_size


def test_training_raises_psnr(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """200 steps on the 24x24 scene; measured 9.7 -> 18.5 dB on CPU; assert +5."""
    torch.manual_seed(0)
    trainer = make_trainer(atlas_pm, atlas_scene, tmp_path / "run", **{"train.max_steps": 200})
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 5.0, (before, after)


def test_with_mip_the_latents_come_from_integrated_features(
    atlas_pm, atlas_scene, tmp_path
) -> None:  # noqa: ANN001
    mip = pytest.importorskip("atlas_plugin_mip")
    trainer = make_trainer(atlas_pm, atlas_scene, tmp_path / "m", enable=("nerfae", "mip"),
                           **{"train.max_steps": 5})  # fmt: skip
    assert isinstance(trainer.pipeline.field, NeRFAEField)
    assert isinstance(trainer.pipeline.field.encoding, mip.IntegratedPositionalEncoding)
    trainer.fit()
    assert trainer.step == 5


def test_with_fourier_features(atlas_scene: Path, tmp_path: Path) -> None:
    pytest.importorskip("atlas_plugin_fourier")
    out = tmp_path / "f"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "nerfae,fourier"]
    assert run_cli([*args, *QUICK]) == 0
    text = (out / "config.toml").read_text()
    assert '[field]\nname = "nerfae"' in text and 'name = "positional"' not in text


def test_with_ngp_both_choosing_the_field_is_a_clash(atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("atlas_plugin_ngp")
    args = [
        "run",
        "--data",
        str(atlas_scene),
        "--out",
        str(tmp_path / "n"),
        "--plugins",
        "ngp,nerfae",
    ]
    assert run_cli([*args, *QUICK]) == 2
    err = capsys.readouterr().err
    assert "'ngp' and 'nerfae' both choose the field" in err and "--set field=" in err
