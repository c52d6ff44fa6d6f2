"""Camera rays against hand-projected points."""

from __future__ import annotations

import math

import torch

from atlas_core.nerf.cameras import focal_from_fov, look_at, pixel_rays


def project(c2w: torch.Tensor, point: torch.Tensor, focal: float, w: int, h: int) -> tuple:
    """Hand projection of a world point into pixel coordinates (col, row)."""
    w2c = torch.linalg.inv(c2w)
    p = w2c[:3, :3] @ point + w2c[:3, 3]
    return (w / 2 + focal * p[0] / -p[2], h / 2 - focal * p[1] / -p[2])


def test_focal_from_fov() -> None:
    assert math.isclose(focal_from_fov(200, 0.6911112070083618), 277.7777, rel_tol=1e-4)


def test_rays_pass_through_projected_points() -> None:
    c2w = look_at(torch.tensor([3.0, -2.0, 1.5]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    focal, w, h = 50.0, 64, 48
    points = torch.tensor([[0.1, 0.2, -0.3], [-0.4, 0.0, 0.5], [0.3, -0.2, 0.1]])
    for point in points:
        col, row = project(c2w, point, focal, w, h)
        # pixel centres are at +0.5: shoot the ray through the projected sub-pixel spot
        origins, dirs, _ = pixel_rays(
            c2w, torch.tensor([col - 0.5]), torch.tensor([row - 0.5]), focal, w, h
        )
        to_point = point - origins[0]
        cross = torch.linalg.cross(dirs[0], to_point / to_point.norm())
        assert cross.norm() < 1e-5
        assert torch.dot(dirs[0], to_point) > 0


def test_centre_pixel_looks_at_target_and_directions_are_unit() -> None:
    c2w = look_at(torch.tensor([0.0, -4.0, 0.0]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    pixels = torch.tensor([31, 0])  # 31 + 0.5 is the centre of a 63-pixel-wide image
    origins, dirs, radii = pixel_rays(c2w, pixels, pixels, 40.0, 63, 63)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(2))
    assert torch.allclose(dirs[0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    # top-left pixel: left (-x) and up (+z) in this camera
    assert dirs[1, 0] < 0 and dirs[1, 2] > 0
    assert radii[1] < radii[0]  # off-axis pixels are farther from the pinhole
    assert torch.allclose(origins[0], torch.tensor([0.0, -4.0, 0.0]))
