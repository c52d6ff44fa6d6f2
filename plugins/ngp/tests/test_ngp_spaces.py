"""The ngp field in the other ray spaces: NDC on a forward-facing capture, Mip-NeRF 360's
contracted cube for an unbounded scene (here forced with data.contract=true)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from atlas_core.api import RunConfig, image_rays
from atlas_core.testing import Trainer, forward_facing_scene

SMALL = {
    "field.levels": 8,
    "field.log2_table": 14,
    "field.finest_resolution": 128,
    "train.batch_rays": 512,
    "train.lr": 2e-2,
    "sampler.resolution": 32,
    "train.target_samples": 16384,
    "eval.views": 2,
    "eval.video_frames": 0,
}


def trainer_for(atlas_pm, data: Path, out: Path, **sets: object) -> Trainer:  # noqa: ANN001
    torch.manual_seed(0)
    config = RunConfig()
    config.data.path = str(data)
    for key, value in {**SMALL, **{k.replace("__", "."): v for k, v in sets.items()}}.items():
        config.set(key, value)
    return Trainer(config, atlas_pm(enable=("ngp",)), out)


@pytest.mark.slow
def test_ndc_hash_grid_spans_the_ndc_box_and_learns(atlas_pm, tmp_path: Path) -> None:  # noqa: ANN001
    """Forward-facing data picks NDC; the hash grid spans the NDC box; 100 steps learn."""
    data = forward_facing_scene(tmp_path / "ff")
    trainer = trainer_for(atlas_pm, data, tmp_path / "run", train__max_steps=100)
    scene, field = trainer.scene, trainer.pipeline.field
    assert scene.space == "ndc"
    assert torch.allclose(field.box_low, torch.tensor(scene.bounds[:3]))
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 5.0, (before, after)


def test_contracted_hash_grid_and_samples(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """data.contract=true: hash grid and occupancy over [-2, 2]^3, samples contracted into
    the radius-2 ball and reaching past the cameras; training stays finite and learns."""
    trainer = trainer_for(
        atlas_pm, atlas_scene, tmp_path / "run", train__max_steps=60, data__contract=True
    )
    field, sampler = trainer.pipeline.field, trainer.pipeline.sampler
    assert trainer.scene.space == "contract"
    assert field.box_low.tolist() == [-2.0] * 3 and field.box_size.tolist() == [4.0] * 3
    assert field.encoding.table_size == 1 << 14  # SMALL sets log2_table
    assert sampler.grid.high.tolist() == [2.0] * 3
    rays = image_rays(trainer.train_views, 0, trainer.scene)[::7]
    samples, _ = sampler(rays, field)
    assert bool((samples.positions.norm(dim=-1) <= 2.0).all())
    assert float(samples.t_ends.max()) > 5.0
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert after > before + 3.0, (before, after)


def test_contracted_scenes_default_to_a_larger_table(
    atlas_pm, atlas_scene: Path, tmp_path: Path
) -> None:  # noqa: ANN001, E501
    """log2_table unset: 2^19 rows in a contracted scene, 2^17 in a box scene."""
    from atlas_plugin_ngp.field import CONTRACTED_LOG2_TABLE, LOG2_TABLE

    def table(**sets: object) -> int:
        config = RunConfig()
        config.data.path = str(atlas_scene)
        for key, value in {"eval.video_frames": 0, **sets}.items():
            config.set(key.replace("__", "."), value)
        trainer = Trainer(config, atlas_pm(enable=("ngp",)), tmp_path / str(len(sets)))
        return trainer.pipeline.field.encoding.table_size

    assert table(data__contract=True) == 1 << CONTRACTED_LOG2_TABLE == 1 << 19
    assert table() == 1 << LOG2_TABLE == 1 << 17
    assert table(data__contract=True, field__log2_table=15) == 1 << 15
