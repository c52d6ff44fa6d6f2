"""Crop and whole-view batches: layout, targets, sharding, start-up checks, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from atlas_core.cli import main
from atlas_core.config import RunConfig
from atlas_core.engine.distributed import World
from atlas_core.engine.trainer import Trainer
from atlas_core.nerf.crops import (
    BLOCK_KEY,
    crop_pixels,
    crop_rays,
    crop_shape,
    decimate,
    undo_blocks,
)
from atlas_core.plugins import load
from atlas_core.testing.fixtures import quick_trainer


def test_crop_pixels_layout() -> None:
    images, rows, cols, layout = crop_pixels(
        torch.tensor([3, 5]), torch.tensor([1, 4]), torch.tensor([2, 0]), 2, 3
    )
    assert images.tolist() == [3] * 6 + [5] * 6
    assert rows.tolist() == [1, 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5]
    assert cols.tolist() == [2, 3, 4, 2, 3, 4, 0, 1, 2, 0, 1, 2]
    assert layout[7].tolist() == [1, 0, 1]


def test_crop_batch_targets_are_image_crops(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__batch="crops", train__crop_size=8)
    rays = trainer.sample_batch()
    count, height, width = crop_shape(rays)
    assert (height, width) == (8, 8) and count == 256 // 64 and len(rays) == count * 64
    views = trainer.train_views
    first = rays.rgba[:64].view(8, 8, 4)
    image = int(rays.camera_indices[0])
    pixels = views.images[image].float() / 255
    found = [
        (t, c)
        for t in range(views.height - 7)
        for c in range(views.width - 7)
        if torch.equal(pixels[t : t + 8, c : c + 8], first)
    ]
    assert found, "the first crop is not a square region of its image"


def test_views_batch_is_whole_images(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__batch="views", train__batch_rays=1200)
    rays = trainer.sample_batch()
    size = trainer.train_views.height
    assert crop_shape(rays) == (2, size, size)  # 1200 // 576 whole 24x24 views
    image = int(rays.camera_indices[0])
    target = trainer.train_views.images[image].float().view(-1, 4) / 255
    assert torch.equal(rays.rgba[: size * size], target)


def test_ray_batches_have_no_crop_layout(atlas_scene: Path, tmp_path: Path) -> None:
    rays = quick_trainer(atlas_scene, tmp_path).sample_batch()
    assert crop_shape(rays) is None and len(rays) == 256


def test_each_rank_gets_its_own_crops(atlas_scene: Path, tmp_path: Path) -> None:
    batches = []
    for rank in (0, 1):
        trainer = quick_trainer(
            atlas_scene, tmp_path / str(rank), train__batch="crops", train__crop_size=8
        )
        trainer.world = World(rank=rank, size=2, local_rank=0)
        torch.manual_seed(5)
        batches.append(trainer.sample_batch())
    assert all(crop_shape(b) == (2, 8, 8) for b in batches)  # 256 rays over 2 ranks
    assert not torch.equal(batches[0].origins, batches[1].origins)


def test_too_large_crop_exits_2(
    atlas_scene: Path, tmp_path: Path, quick_args: list[str], capsys: pytest.CaptureFixture
) -> None:
    argv = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), *quick_args]
    code = main([*argv, "--set", "train.batch=crops", "--set", "train.crop_size=64"])
    assert (
        code == 2
        and "train.crop_size=64 exceeds the training images (24x24)" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("batch", "losses"),
    [("crops", {"ssim": 0.2, "rgb_l2": 1.0}),
     ("crops", {"ms_ssim": 0.2, "fft": 0.05, "rgb_rmse": 1.0}),
     ("views", {"rgb_l2": 1.0, "ssim": 0.1})],
)  # fmt: skip
def test_crop_training_learns(atlas_scene: Path, tmp_path: Path, batch: str, losses: dict) -> None:
    trainer = quick_trainer(
        atlas_scene, tmp_path, train__batch=batch, train__crop_size=12, train__batch_rays=576,
        train__max_steps=100, train__lr=2e-2, losses=losses,
    )  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    assert set(trainer.history[-1]) >= set(losses)
    print(f"{batch} {losses}: {before:.2f} -> {after:.2f} dB")
    assert after > before + 3.0, (before, after)


def test_default_crop_size_shrinks_to_small_images(atlas_scene: Path, tmp_path: Path) -> None:
    config = RunConfig()
    config.data.path = str(atlas_scene)
    config.set("train.batch", "crops")
    config.set("train.batch_rays", 1200)
    trainer = Trainer(config, load(), tmp_path)
    assert config.train.crop_size == 32 and crop_shape(trainer.sample_batch()) == (2, 24, 24)


def test_decimate_keeps_block_centres_and_targets(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path)
    views, scene = trainer.train_views, trainer.scene
    tops, lefts = torch.tensor([0, 4]), torch.tensor([2, 6])
    full = crop_rays(views, torch.tensor([1, 3]), tops, lefts, (12, 12), scene)
    low = decimate(full, 3)
    assert crop_shape(low) == (2, 4, 4)
    # ray (crop 1, row 2, col 3) goes through pixel (4 + 2*3 + 1, 6 + 3*3 + 1) of image 3
    ray = 16 + 2 * 4 + 3
    assert torch.equal(low.rgba[ray], views.images[3, 11, 16].float() / 255)
    assert torch.allclose(low.radii[0], full.radii[1 * 12 + 1] * 3)  # a block's footprint
    images = undo_blocks(low.extras[BLOCK_KEY], 2, 4, 4)
    assert torch.equal(images.reshape(-1, 4), full.rgba)
    assert trainer.view_pipeline() is trainer.pipeline  # no upsampling renderer
