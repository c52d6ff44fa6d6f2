"""Projection into source cameras and bilinear feature look-ups."""

from __future__ import annotations

import math

import torch
from atlas_plugin_pixelnerf.projection import (
    project,
    rotate_to_camera,
    sample_features,
    world_to_camera,
)

from atlas_core.api import look_at, pixel_rays

WIDTH, HEIGHT, FOCAL = 20, 14, 18.0


def camera() -> torch.Tensor:
    """An oblique camera looking at the origin."""
    eye = torch.tensor([3.0, -2.0, 1.5])
    return look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))


def test_a_point_on_a_pixel_ray_projects_to_that_pixel_centre() -> None:
    c2w = camera()
    cols = torch.tensor([0, 7, 19, 3])
    rows = torch.tensor([0, 5, 13, 11])
    origins, dirs, _ = pixel_rays(c2w, cols, rows, FOCAL, WIDTH, HEIGHT)
    points = origins + 2.7 * dirs
    uv = project(world_to_camera(points, c2w), FOCAL, WIDTH, HEIGHT)
    expected = torch.stack([cols + 0.5, rows + 0.5], dim=-1).float()
    assert torch.allclose(uv, expected, atol=1e-4)


def test_camera_frame_convention() -> None:
    c2w = camera()
    eye = c2w[:3, 3]
    assert torch.allclose(world_to_camera(eye, c2w), torch.zeros(3), atol=1e-6)
    ahead = world_to_camera(torch.zeros(3), c2w)  # the origin is straight ahead, on -Z
    assert torch.allclose(ahead, torch.tensor([0.0, 0.0, -float(eye.norm())]), atol=1e-5)
    forward = rotate_to_camera(-eye / eye.norm(), c2w)
    assert torch.allclose(forward, torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)


def test_pixel_centres_read_their_own_feature_at_any_map_resolution() -> None:
    features = torch.arange(2 * 3 * 7 * 10, dtype=torch.float32).view(2, 3, 7, 10)
    rows, cols = torch.meshgrid(torch.arange(7), torch.arange(10), indexing="ij")
    # the 7x10 map covers a 14x20 image: map pixel (c, r) is centred at image (2c + 1, 2r + 1)
    uv = torch.stack([2 * cols + 1.0, 2 * rows + 1.0], dim=-1).view(1, -1, 2).expand(2, -1, -1)
    sampled = sample_features(features, uv, WIDTH, HEIGHT)
    assert sampled.shape == (2, 70, 3)
    assert torch.allclose(sampled, features.flatten(2).transpose(1, 2), atol=1e-4)


def test_bilinear_between_pixels_and_border_outside() -> None:
    features = torch.tensor([[[[0.0, 10.0]]]])  # one channel, 1x2 map over a 2x1 image
    uv = torch.tensor([[[1.0, 0.5], [-5.0, 0.5], [9.0, 0.5]]])
    sampled = sample_features(features, uv, 2, 1)[0, :, 0]
    assert torch.allclose(sampled, torch.tensor([5.0, 0.0, 10.0]))


def test_feature_sampling_passes_gradients_to_maps_and_points() -> None:
    c2w = camera()
    features = torch.randn(1, 4, 7, 10, requires_grad=True)
    points = (torch.randn(32, 3) * 0.3).requires_grad_()
    uv = project(world_to_camera(points, c2w), FOCAL, WIDTH, HEIGHT)
    sampled = sample_features(features, uv[None], WIDTH, HEIGHT)
    assert sampled.shape == (1, 32, 4)
    (sampled**2).sum().backward()
    assert features.grad is not None and float(features.grad.abs().sum()) > 0
    assert points.grad is not None and bool(torch.isfinite(points.grad).all())
    assert float(points.grad.abs().sum()) > 0


def test_points_behind_the_camera_land_outside_the_image() -> None:
    c2w = camera()
    behind = c2w[:3, 3] * 1.5 + torch.tensor([0.0, 0.0, 0.01])
    uv = project(world_to_camera(behind, c2w), FOCAL, WIDTH, HEIGHT)
    assert not bool(((uv >= 0) & (uv <= torch.tensor([WIDTH, HEIGHT]))).all())
    assert math.isfinite(float(uv.abs().max()))
