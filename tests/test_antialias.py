"""Rays off their pixel's centre: jittered training rays (``train.pixel_jitter``) and
supersampled evaluation (``eval.supersample``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from atlas_core.api import ConfigError, SceneData, Views, image_rays, make_rays
from atlas_core.engine import trainer as trainer_module
from atlas_core.engine.evaluate import (
    antialiased,
    chosen_supersample,
    render_view,
    subpixel_offsets,
)
from atlas_core.testing import quick_trainer

SCENE = SceneData({}, near=0.5, far=6.0, bounds=(-2.0, -2.0, -2.0, 2.0, 2.0, 2.0))


def flat_views(size: int = 8) -> Views:
    """One random opaque view looking down -z from z = 4, focal 10."""
    images = torch.randint(0, 256, (1, size, size, 4), dtype=torch.uint8)
    images[..., 3] = 255
    c2w = torch.eye(4)[None].clone()
    c2w[:, 2, 3] = 4.0
    return Views(images, c2w, focal=10.0)


class EdgePipeline:
    """Renders white where a ray's slope ``x / -z`` passes 0.06, black elsewhere: on an
    8-pixel image of focal 10 (column 4 spans slopes 0 to 0.1) the edge cuts column 4 at
    its 0.6."""

    def __init__(self) -> None:
        self.calls = 0

    def render(self, rays, chunk: int) -> dict[str, torch.Tensor]:  # noqa: ANN001
        self.calls += 1
        slope = rays.directions[:, 0] / -rays.directions[:, 2]
        rgb = (slope > 0.06).float()[:, None].expand(-1, 3)
        return {"rgb": rgb, "target_rgb": rays.rgba[:, :3], "step": torch.tensor(7)}


def test_subpixel_offsets_are_a_centred_grid() -> None:
    assert subpixel_offsets(1) == [(0.0, 0.0)]
    assert sorted(subpixel_offsets(2)) == [(-0.25, -0.25), (-0.25, 0.25), (0.25, -0.25),
                                           (0.25, 0.25)]  # fmt: skip
    assert torch.tensor(subpixel_offsets(3)).mean(dim=0).abs().max() < 1e-9


def test_offset_rays_meet_halfway_between_pixels() -> None:
    views = flat_views()
    right = image_rays(views, 0, SCENE, (0.5, 0.0))
    left = image_rays(views, 0, SCENE, (-0.5, 0.0))
    centre = image_rays(views, 0, SCENE)
    grid = lambda d: d.view(8, 8, 3)  # noqa: E731
    assert torch.allclose(grid(right.directions)[:, :-1], grid(left.directions)[:, 1:], atol=1e-6)
    assert not torch.allclose(right.directions, centre.directions)
    assert torch.equal(right.rgba, centre.rgba)  # each ray keeps its pixel's target


def test_supersampling_averages_over_the_pixel() -> None:
    views, pipeline = flat_views(), EdgePipeline()
    point = render_view(pipeline, views, 0, SCENE, 64)["rgb"].view(8, 8, 3)
    mean = render_view(pipeline, views, 0, SCENE, 64, supersample=2)["rgb"].view(8, 8, 3)
    assert pipeline.calls == 1 + 4
    assert torch.equal(point[:, 4], torch.zeros(8, 3))  # its centre, 0.5, is left of 0.6
    assert torch.allclose(mean[:, 4], torch.full((8, 3), 0.5))  # 0.25 and 0.75
    assert torch.equal(mean[:, 5:], point[:, 5:]) and torch.equal(mean[:, :4], point[:, :4])
    assert point[:, 5:].min() == 1 and point[:, :4].max() == 0


def test_eval_supersample_renders_each_view_that_many_times(
    atlas_scene: Path, tmp_path: Path
) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / "run", eval__supersample=2)
    calls = []
    render = trainer.pipeline.render
    trainer.pipeline.render = lambda rays, chunk: calls.append(len(rays)) or render(rays, chunk)
    result = trainer.evaluate(write_images=False)
    assert result["views"] == 1 and calls == [24 * 24] * 4 and result["supersample"] == 2


def disc_views(partial: bool) -> Views:
    """A 16 px opaque disc on a clear background, its edge pixels half covered or not."""
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    radius = ((rows - 7.5) ** 2 + (cols - 7.5) ** 2).sqrt()
    alpha = torch.where(radius < 5, 255, 0)
    if partial:
        alpha = torch.where((radius >= 5) & (radius < 6), 128, alpha)
    images = torch.zeros(1, 16, 16, 4, dtype=torch.uint8)
    images[..., 3] = alpha.to(torch.uint8)
    return Views(images, torch.eye(4)[None], focal=10.0)


def test_auto_supersamples_only_antialiased_images() -> None:
    assert antialiased(disc_views(partial=True)) and not antialiased(disc_views(partial=False))
    opaque = flat_views()  # a photo: every pixel covered, none partly
    assert not antialiased(opaque)
    assert chosen_supersample(0, disc_views(partial=True)) == 2
    assert chosen_supersample(0, disc_views(partial=False)) == 1
    assert chosen_supersample(3, disc_views(partial=False)) == 3  # as set


def test_auto_reads_the_training_images(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / "run", eval__supersample=0)
    assert trainer.evaluate(write_images=False)["supersample"] == 2  # synth renders 2 x 2
    trainer.train_views.images[..., 3] = 255  # now opaque photos: one ray per pixel
    assert trainer.evaluate(write_images=False)["supersample"] == 1


@pytest.mark.parametrize("jitter", [False, True])
def test_pixel_jitter_moves_training_rays_within_their_pixels(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jitter: bool
) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / "run", train__pixel_jitter=jitter)
    pixels = torch.arange(64) % 3, torch.arange(64) // 3 % 24, torch.arange(64) % 24
    monkeypatch.setattr(trainer_module, "uniform_pixels", lambda views, count, device: pixels)
    rays = trainer.sample_batch()
    centres = make_rays(trainer.train_views, *pixels, trainer.scene)
    assert torch.equal(rays.rgba, centres.rgba)
    moved = (rays.directions - centres.directions).norm(dim=-1)
    if not jitter:
        assert moved.max() == 0
        return
    assert (moved > 0).all()
    corners = make_rays(trainer.train_views, *pixels, trainer.scene,
                        offsets=torch.full((64, 2), 0.5))  # fmt: skip
    assert (moved <= (corners.directions - centres.directions).norm(dim=-1) + 1e-6).all()


def test_pixel_jitter_starts_at_its_step(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / "run", train__pixel_jitter=True,
                            train__pixel_jitter_start=5)  # fmt: skip
    pixels = torch.arange(64) % 3, torch.arange(64) // 3 % 24, torch.arange(64) % 24
    monkeypatch.setattr(trainer_module, "uniform_pixels", lambda views, count, device: pixels)
    centres = make_rays(trainer.train_views, *pixels, trainer.scene).directions
    trainer.step = 4
    assert torch.equal(trainer.sample_batch().directions, centres)
    trainer.step = 5
    assert (trainer.sample_batch().directions != centres).any(dim=-1).all()


@pytest.mark.parametrize(
    ("setting", "message"),
    [({"train.batch": "crops"}, "train.pixel_jitter moves single rays"),
     ({"train.scales": 2}, "train.scales and train.pixel_jitter"),
     ({"train.pixel_jitter": False, "train.pixel_jitter_start": 5}, "does nothing without")],
)  # fmt: skip
def test_pixel_jitter_refuses_crops_and_scales(
    atlas_scene: Path, tmp_path: Path, setting: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        quick_trainer(atlas_scene, tmp_path / "run", **{"train.pixel_jitter": True, **setting})
