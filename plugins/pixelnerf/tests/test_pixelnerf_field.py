"""The field's conditioning, pooling over source views, and the encoder."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_pixelnerf.encoder import FeaturePyramidEncoder
from atlas_plugin_pixelnerf.field import PixelNeRFField
from test_pixelnerf_contract import memory_scene

from atlas_core.api import (
    BuildContext,
    ConfigError,
    RayBundle,
    RunConfig,
    camera_rays,
    make_rays,
    samples_from_bins,
    stratified_edges,
)
from atlas_core.testing import configure, load_plugins


def make_field(sources: int = 1, **options: object) -> PixelNeRFField:
    """A small field on the in-memory scene (4 views per object)."""
    config = RunConfig()
    config.plugins = ["pixelnerf"]
    config.set("pixelnerf.source_views", sources)
    for key, value in {"width": 16, "encoder_width": 4, **options}.items():
        config.set(f"field.{key}", value)
    plugins = load_plugins(config.plugins)
    configure(config, plugins)
    torch.manual_seed(0)
    return BuildContext(config, plugins, memory_scene(views=4)).make_field()


def rays_of(field: PixelNeRFField, **extras: torch.Tensor) -> RayBundle:
    """Six rays through the first test view, carrying ``extras``."""
    scene = memory_scene(views=4)
    views = scene.split("test")
    index = torch.zeros(6, dtype=torch.long)
    rows, cols = torch.arange(6) + 1, torch.arange(6) + 1
    rays = make_rays(views, index, rows, cols, scene)
    rays.extras = extras
    return rays


def outputs(field: PixelNeRFField, rays: RayBundle) -> torch.Tensor:
    """Density and colour of 8 samples per ray, side by side."""
    samples = samples_from_bins(rays, stratified_edges(rays, 8, jitter=False))
    with torch.no_grad():
        out = field(samples)
    return torch.cat([out["density"], out["rgb"]], dim=1)


def test_conditioning_from_extras_and_fallbacks() -> None:
    field = make_field(sources=2)
    objects = torch.tensor([0, 1, 2, 2, 0, 1])
    views = torch.tensor([0, 1, 2, 3, 1, 0])
    got_objects, sources = field.conditioning(rays_of(field, object=objects, view=views))
    assert torch.equal(got_objects, objects)  # the first two views other than the ray's own
    assert sources.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1], [0, 2], [1, 2]]
    given = torch.tensor([[3, 1, 0]]).expand(6, 3)
    _, sources = field.conditioning(rays_of(field, object=objects, sources=given))
    assert sources.tolist() == [[3, 1]] * 6
    free = camera_rays(torch.eye(4), 10.0, 4, 4, memory_scene())  # no extras at all
    got_objects, sources = field.conditioning(free)
    assert got_objects.tolist() == [2] * 16 and sources.tolist() == [[0, 1]] * 16
    with pytest.raises(ValueError, match="rays carry 1 source views, need 2"):
        field.conditioning(rays_of(field, object=objects, sources=given[:, :1]))


def test_outputs_depend_on_the_source_image_and_pool_over_views() -> None:
    field = make_field(sources=2, blocks=3, combine_at=2).eval()
    objects = torch.full((6,), 2)
    base = outputs(field, rays_of(field, object=objects, sources=torch.tensor([[0, 1]] * 6)))
    swapped = outputs(field, rays_of(field, object=objects, sources=torch.tensor([[1, 0]] * 6)))
    assert torch.allclose(base, swapped, atol=1e-6)  # average pooling: order does not matter
    other = outputs(field, rays_of(field, object=objects, sources=torch.tensor([[0, 3]] * 6)))
    assert float((base - other).abs().max()) > 1e-4
    field.images[2, 1] = 255 - field.images[2, 1]  # a different source image, same camera
    changed = outputs(field, rays_of(field, object=objects, sources=torch.tensor([[0, 1]] * 6)))
    assert float((base - changed).abs().max()) > 1e-4


def test_pooling_after_the_last_block() -> None:
    field = make_field(blocks=2, combine_at=2)
    out = outputs(field, rays_of(field, object=torch.zeros(6, dtype=torch.long)))
    assert out.shape == (48, 4) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize(
    ("stages", "with_image", "channels"), [(0, False, 4), (1, False, 12), (2, True, 31)]
)
def test_encoder_pyramid_shapes(stages: int, with_image: bool, channels: int) -> None:
    encoder = FeaturePyramidEncoder(width=4, stages=stages, with_image=with_image)
    images = torch.rand(3, 3, 16, 12, requires_grad=True)
    features = encoder(images)
    assert encoder.out_dim == channels and features.shape == (3, channels, 8, 6)
    features.square().mean().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0
    if with_image:  # the last three channels are the image, area-averaged 2x2
        pooled = torch.nn.functional.avg_pool2d(images.detach(), 2)
        assert torch.allclose(features[:, -3:].detach(), pooled, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"combine_at": 5}, "1 <= combine_at <= blocks"),
        ({"encoder_stages": -1}, "stages >= 0"),
    ],
)
def test_bad_field_options(options: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_field(**options)
