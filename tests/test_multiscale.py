"""Multiscale training and evaluation (``train.scales``, Mip-NeRF's protocol), frustum
multisamples and level weights (Zip-NeRF), and slots filled by a plugin's preference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from atlas_core.api import (
    ConfigError,
    PluginError,
    RaySamples,
    RunConfig,
    SceneData,
    Views,
    frustum_multisamples,
    hookimpl,
    level_weights,
    make_rays,
    prefer,
)
from atlas_core.build import configure
from atlas_core.data.scales import multiscale_rays, scaled_views
from atlas_core.nerf.rays import cat_rays
from atlas_core.testing import quick_trainer

SCENE = SceneData({}, near=0.5, far=6.0, bounds=(-2.0, -2.0, -2.0, 2.0, 2.0, 2.0))


def random_views(count: int = 2, size: int = 8) -> Views:
    """``count`` random opaque 8x8 views looking down -z from z = 4."""
    images = torch.randint(0, 256, (count, size, size, 4), dtype=torch.uint8)
    images[..., 3] = 255
    c2w = torch.eye(4).repeat(count, 1, 1)
    c2w[:, 2, 3] = 4.0
    return Views(images, c2w, focal=10.0)


def test_scaled_views_box_filter_and_divide_the_focal() -> None:
    views = random_views()
    half = scaled_views(views, 2)
    assert (half.width, half.height, half.focal) == (4, 4, 5.0)
    block = views.images[0, 2:4, 4:6, :3].float().mean(dim=(0, 1))
    assert torch.allclose(half.images[0, 1, 2, :3].float(), block, atol=0.51)
    assert scaled_views(views, 1) is views
    with pytest.raises(ConfigError, match="lower train.scales"):
        scaled_views(views, 16)


def test_multiscale_rays_carry_each_scale_footprint_and_colour() -> None:
    views = random_views()
    pyramid = [views, scaled_views(views, 2), scaled_views(views, 4)]
    torch.manual_seed(0)
    rays = multiscale_rays(pyramid, 3000, SCENE)
    assert len(rays) == 3000
    base = float(make_rays(views, *(torch.zeros(1, dtype=torch.long),) * 3, SCENE).radii)
    ratios = (rays.radii.view(-1) / base).round().long()
    counts = torch.bincount(ratios, minlength=5)
    assert set(ratios.tolist()) == {1, 2, 4}
    assert counts[1:].sum() == 3000 and counts[[1, 2, 4]].min() > 800  # about 1000 each
    coarse = pyramid[2].images.float().view(-1, 4) / 255.0
    colours = rays.rgba[ratios == 4]
    assert all(((coarse - c).abs().max(dim=1).values < 1e-6).any() for c in colours[:20])


def test_cat_rays_joins_every_field() -> None:
    views = random_views()
    index = torch.tensor([0, 1])
    rays = make_rays(views, index, index, index, SCENE)
    joined = cat_rays([rays, rays[1:]])
    assert len(joined) == 3 and torch.equal(joined.origins[2], rays.origins[1])
    assert joined.rgba.shape == (3, 4) and joined.times is None


def test_training_draws_rays_at_each_scale(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / "run", **{"train.scales": 3})
    radii = trainer.sample_batch().radii.view(-1)
    assert radii.max() / radii.min() > 3.5  # 1/1 and 1/4 scales are both drawn
    single = quick_trainer(atlas_scene, tmp_path / "one")
    radii = single.sample_batch().radii.view(-1)
    assert radii.max() / radii.min() < 1.5


def test_a_multiscale_run_scores_every_scale(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(
        atlas_scene, tmp_path / "run", **{"train.scales": 2}, train__max_steps=5
    )
    trainer.fit()
    test = trainer.finish(video=False)["test"]
    assert set(test["scales"]) == {"1", "2"}
    assert test["scales"]["1"]["psnr"] == test["psnr"]
    assert test["scales"]["2"]["psnr"] != test["psnr"]
    mean = (test["scales"]["1"]["psnr"] + test["scales"]["2"]["psnr"]) / 2
    assert test["multiscale_psnr"] == pytest.approx(mean)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"train.batch": "crops"}, "train.batch=rays"),
        ({"train.error_sampling": 0.5}, "combined"),
        ({"train.scales": 6}, "1/32 scale of the 24x24 training images"),
    ],  # fmt: skip
)
def test_scales_refuse_crops_and_error_maps(
    atlas_scene: Path, tmp_path: Path, setting: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        quick_trainer(atlas_scene, tmp_path / "run", **{"train.scales": 2, **setting})


def cone_samples(count: int = 4) -> RaySamples:
    """Samples on two rays from the origin along +z and +x, radius 0.01 at unit distance."""
    views = random_views(1)
    rays = make_rays(views, torch.zeros(2, dtype=torch.long), torch.tensor([3, 4]),
                     torch.tensor([4, 2]), SCENE)  # fmt: skip
    rays.origins = torch.zeros(2, 3)
    rays.directions = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    rays.radii = torch.full((2, 1), 0.01)
    starts = torch.linspace(1.0, 4.0, count)[:, None].repeat(2, 1)
    index = torch.arange(2).repeat_interleave(count)
    return RaySamples(rays, starts, starts + 0.5, index)


@pytest.mark.parametrize("count", [2, 6])
def test_multisamples_span_the_frustum(count: int) -> None:
    samples = cone_samples()
    points, stds = frustum_multisamples(samples, count)
    assert points.shape == (8, count, 3) and stds.shape == (8, count)
    t = (points * samples.directions[:, None]).sum(-1)  # distance along each ray
    assert torch.allclose(t.mean(dim=1, keepdim=True), 0.5 * (samples.t_starts + samples.t_ends))
    radial = (points - t[..., None] * samples.directions[:, None]).norm(dim=-1)
    assert torch.allclose(radial, 0.01 * t / math.sqrt(2.0), atol=1e-6)  # the ring r t / sqrt(2)
    assert torch.allclose(stds, 0.5 * radial, atol=1e-7)  # Gaussians half as wide
    offsets = points - t[..., None] * samples.directions[:, None]
    assert offsets.sum(dim=1).norm(dim=-1).max() < 0.01 * 0.5  # the spiral turns around the axis
    assert (t >= samples.t_starts).all() and (t <= samples.t_ends).all()
    turned, _ = frustum_multisamples(samples, count, jitter=True)
    assert not torch.allclose(turned, points)


def test_one_multisample_is_the_sample_itself() -> None:
    samples = cone_samples()
    points, stds = frustum_multisamples(samples, 1)
    assert torch.allclose(points[:, 0], samples.positions)
    mid = 0.5 * (samples.t_starts + samples.t_ends)
    assert torch.allclose(stds, 0.5 * 0.01 * mid / math.sqrt(2.0))
    _, wider = frustum_multisamples(samples, 1, std_scale=1.0)
    assert torch.allclose(wider, 2.0 * stds)


def test_level_weights_follow_zip_nerf_in_float64() -> None:
    stds = torch.tensor([0.0, 1e-4, 1e-2, 0.1, 10.0], dtype=torch.float64)
    resolutions = torch.tensor([16.0, 128.0, 1024.0], dtype=torch.float64)
    weights = level_weights(stds, resolutions)
    for i, s in enumerate(stds.tolist()):
        for j, n in enumerate(resolutions.tolist()):
            expected = 1.0 if s == 0 else math.erf(1.0 / math.sqrt(8.0 * s * s * n * n))
            assert weights[i, j].item() == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert (weights[:, 1:] <= weights[:, :-1]).all()  # finer levels weigh less
    assert weights[0].eq(1).all() and weights[-1].max() < 1e-2


class Preferring:
    """A plugin that would like the ``stratified`` sampler replaced by ``hierarchical``."""

    def __init__(self, wish: str = "hierarchical") -> None:
        self.wish = wish

    @hookimpl
    def atlas_configure(self, config: RunConfig) -> None:
        prefer(config, "sampler", self.wish)


class Claiming:
    """A plugin that claims the ``occupancy`` sampler."""

    @hookimpl
    def atlas_configure(self, config: RunConfig) -> None:
        config.sampler.name = "occupancy"


def test_a_preference_fills_a_slot_nobody_claims(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    configure(config, atlas_pm(Preferring()))
    assert config.sampler.name == "hierarchical"
    assert config.preferred == {"sampler": "hierarchical"}


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_claim_beats_a_preference_in_any_order(atlas_pm, order: str) -> None:  # noqa: ANN001
    plugins = [Preferring(), Claiming()]
    config = RunConfig()
    configure(config, atlas_pm(*(plugins if order == "before" else plugins[::-1])))
    assert config.sampler.name == "occupancy" and config.preferred == {}


def test_the_user_beats_a_preference(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    config.set("sampler", "stratified")
    configure(config, atlas_pm(Preferring()))
    assert config.sampler.name == "stratified"


def test_two_different_preferences_clash(atlas_pm) -> None:  # noqa: ANN001
    with pytest.raises(PluginError, match="both prefer a sampler"):
        configure(RunConfig(), atlas_pm(Preferring(), Preferring("occupancy")))


def test_prefer_names_a_slot() -> None:
    with pytest.raises(ValueError, match="unknown slot"):
        prefer(RunConfig(), "samplers", "mip")
