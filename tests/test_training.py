"""Training really learns: PSNR rises by a stated margin on generated and real scenes."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_core.config import RunConfig
from atlas_core.engine.trainer import Trainer
from atlas_core.plugins import load

pytestmark = pytest.mark.slow
LEGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "nerf_synthetic" / "lego"
MARGIN_DB = 8.0


def trainer_for(data: Path, out: Path, **sets: object) -> Trainer:
    config = RunConfig()
    config.data.path = str(data)
    for key, value in sets.items():
        config.set(key.replace("__", "."), value)
    return Trainer(config, load(), out)


def test_psnr_rises_by_margin_on_generated_scene(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = trainer_for(
        atlas_scene, tmp_path / "run", train__max_steps=300, train__batch_rays=1024,
        sampler__samples=32, data__bound=1.2, eval__views=0,
    )  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    print(f"generated scene: {before:.2f} -> {after:.2f} dB")
    assert after - before >= MARGIN_DB, (before, after)
    assert after >= 20.0, after


@pytest.mark.skipif(not LEGO.is_dir(), reason=f"{LEGO} not present (shared data only)")
def test_trains_on_real_lego(tmp_path: Path) -> None:
    trainer = trainer_for(
        LEGO, tmp_path / "lego", data__downscale=4, train__max_steps=60,
        train__batch_rays=1024, sampler__samples=32, eval__views=2,
    )  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert trainer.train_views.images.shape[1:3] == (50, 50)
    print(f"lego: {before:.2f} -> {after:.2f} dB")
    assert after > before + 2.0, (before, after)
