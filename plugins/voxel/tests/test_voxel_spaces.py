"""The voxel field in the other ray spaces: NDC on a forward-facing capture, Mip-NeRF 360's
contracted cube for an unbounded scene (here forced with data.contract=true)."""

from __future__ import annotations

from pathlib import Path

import atlas_plugin_voxel
import torch

from atlas_core.api import RunConfig, image_rays
from atlas_core.testing import Trainer, forward_facing_scene

SMALL = {
    "field.resolution": 24,
    "field.initial_resolution": 12,
    "field.upscale_steps": [10],
    "train.batch_rays": 256,
    "sampler.resolution": 16,
    "train.target_samples": 8192,
    "eval.views": 2,
    "eval.video_frames": 0,
}


def trainer_for(atlas_pm, data: Path, out: Path, **sets: object) -> Trainer:  # noqa: ANN001
    config = RunConfig()
    config.data.path = str(data)
    for key, value in {**SMALL, **{k.replace("__", "."): v for k, v in sets.items()}}.items():
        config.set(key, value)
    return Trainer(config, atlas_pm(atlas_plugin_voxel), out)


def test_ndc_grid_covers_the_ndc_box_and_learns(atlas_pm, tmp_path: Path) -> None:  # noqa: ANN001
    """Forward-facing data picks NDC; the grids span the NDC box; 60 steps learn the plane."""
    data = forward_facing_scene(tmp_path / "ff")
    trainer = trainer_for(atlas_pm, data, tmp_path / "run", train__max_steps=60)
    scene, field = trainer.scene, trainer.pipeline.field
    assert scene.space == "ndc"
    assert torch.allclose(field.low, torch.tensor(scene.bounds[:3]))
    assert torch.allclose(field.high, torch.tensor(scene.bounds[3:]))
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 5.0, (before, after)


def test_contracted_grid_and_samples(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """data.contract=true: grids and occupancy over [-2, 2]^3, samples contracted inside
    the radius-2 ball and reaching past the unit ball; training stays finite and learns."""
    trainer = trainer_for(
        atlas_pm, atlas_scene, tmp_path / "run", train__max_steps=40, data__contract=True
    )
    field, sampler = trainer.pipeline.field, trainer.pipeline.sampler
    assert trainer.scene.space == "contract"
    assert field.low.tolist() == [-2.0] * 3 and field.high.tolist() == [2.0] * 3
    assert sampler.grid.low.tolist() == [-2.0] * 3
    rays = image_rays(trainer.train_views, 0, trainer.scene)[::7]
    samples, _ = sampler(rays, field)
    positions = samples.positions
    assert bool((positions.norm(dim=-1) <= 2.0).all())
    assert float(samples.t_ends.max()) > 5.0  # out past the cameras, in world units
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 3.0, (before, after)
