"""The fourier plugin through the core: registration, configuration, annealed runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_fourier import FourierEncoding

from atlas_core.api import PluginError, RunConfig, hookimpl
from atlas_core.testing import Trainer, configure, load_plugins, run_cli

QUICK = {"train.batch_rays": 128, "sampler.samples": 12, "field.width": 16,
         "eval.views": 1, "eval.video_frames": 0, "encoding.features": 16}  # fmt: skip


def test_entry_point_registers_the_encoding(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("fourier",))
    component = loaded.registry.get("encodings", "fourier")
    assert component.factory is FourierEncoding and component.plugin == "fourier"
    assert loaded.infos["fourier"].distribution == "atlas-plugin-fourier"
    assert loaded.infos["fourier"].components == {"encodings": ["fourier"]}
    assert "fourier" not in load_plugins().infos  # installed is not enabled


def test_configure_fills_only_a_default_encoding(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("fourier",))
    config = RunConfig()
    configure(config, loaded)
    assert config.encoding.name == "fourier"
    assert (config.field.name, config.sampler.name) == ("tiny", "stratified")
    for chosen in ("positional", "identity"):
        explicit = RunConfig()
        explicit.set("encoding", chosen)
        configure(explicit, loaded)
        assert explicit.encoding.name == chosen


class EncodingChooser:
    """Another plugin that fills the encoding slot."""

    name = "chooser"

    @hookimpl
    def atlas_configure(self, config) -> None:  # noqa: ANN001
        config.encoding.name = "identity"


def test_another_encoding_claim_clashes_in_either_order(atlas_pm) -> None:  # noqa: ANN001
    import atlas_plugin_fourier

    for order in (
        (EncodingChooser(), atlas_plugin_fourier),
        (atlas_plugin_fourier, EncodingChooser()),
    ):
        with pytest.raises(PluginError, match="both choose the encoding"):
            configure(RunConfig(), atlas_pm(*order))
    chosen = RunConfig()
    chosen.set("encoding", "positional")
    configure(chosen, atlas_pm(EncodingChooser(), atlas_plugin_fourier))
    assert chosen.encoding.name == "positional"


def make_trainer(scene: Path, out: Path, steps: int, **extra: object) -> Trainer:
    config = RunConfig()
    config.data.path = str(scene)
    config.plugins = ["fourier"]
    for key, value in {**QUICK, "train.max_steps": steps, **extra}.items():
        config.set(key, value)
    return Trainer(config, load_plugins(["fourier"]), out)


def test_annealing_changes_the_features_during_training(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    trainer = make_trainer(atlas_scene, tmp_path / "r", 6, **{"encoding.anneal_steps": 12})
    encoding = trainer.pipeline.field.encoding
    assert isinstance(encoding, FourierEncoding)
    point = torch.tensor([[0.3, -0.2, 0.5]])
    before = encoding(point).clone()
    assert torch.equal(before[:, 3:], torch.zeros(1, 32))  # step 0: every frequency closed
    trainer.fit()
    assert int(encoding.step) == 6
    during = encoding(point)
    assert not torch.equal(during, before)
    window = encoding.window()
    assert window[0] == 1.0 and window[-1] == 0.0  # half way: low open, high closed
    assert int(trainer.state()["model"]["field.encoding.step"]) == 6  # resumes annealed


def test_cli_run_uses_fourier_and_checks_options(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    base = ["run", "--data", str(atlas_scene), "--plugins", "fourier", "--max-steps", "3",
            "--eval-views", "1", "--set", "eval.video_frames=0", "--set", "train.batch_rays=64",
            "--set", "sampler.samples=8", "--set", "field.width=16"]  # fmt: skip
    out = tmp_path / "ok"
    assert run_cli([*base, "--out", str(out), "--set", "encoding.sigma=2.5"]) == 0
    text = (out / "config.toml").read_text()
    assert 'name = "fourier"' in text and "sigma = 2.5" in text
    assert run_cli([*base, "--out", str(tmp_path / "bad"), "--set", "encoding.sigma=0.0"]) == 2
    assert run_cli([*base, "--out", str(tmp_path / "typo"), "--set", "encoding.sigmaa=1.0"]) == 2


def test_training_raises_psnr(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """80 steps on the 24x24 scene: measured 10.0 -> 13.8 dB (positional: 9.5 -> 13.3)."""
    torch.manual_seed(0)
    trainer = make_trainer(
        atlas_scene, tmp_path / "fit", 80, **{"encoding.features": 64, "encoding.sigma": 0.5,
        "field.width": 64, "train.batch_rays": 512, "sampler.samples": 24, "eval.views": 3,
        "train.lr": 1e-2},
    )  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 2.5, (before, after)
