"""Frustum Gaussians: closed forms against Monte-Carlo estimates and the direct formulas."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_mip.gaussians import (
    cone_moments,
    cylinder_moments,
    frustum_gaussians,
    frustum_moments,
    lift_diagonal,
)

# (t0, t1, radius at unit distance): thin and thick intervals, one reaching the apex
INTERVALS = [(2.0, 2.5, 0.05), (1.0, 3.0, 0.2), (0.0, 1.0, 0.3), (4.0, 4.1, 0.01)]


def sample_frustum(
    direction: torch.Tensor, t0: float, t1: float, radius: float, shape: str, count: int
) -> torch.Tensor:
    """``count`` points [count, 3] uniform in a cone segment or cylinder from the origin."""
    generator = torch.Generator().manual_seed(0)
    u = torch.rand(count, 3, generator=generator, dtype=torch.float64)
    if shape == "cone":  # volume grows with t^2: invert the CDF of t^3
        t = (t0**3 + u[:, 0] * (t1**3 - t0**3)) ** (1.0 / 3.0)
        rho = radius * t * u[:, 1].sqrt()
    else:
        t = t0 + u[:, 0] * (t1 - t0)
        rho = radius * u[:, 1].sqrt()
    angle = 2.0 * torch.pi * u[:, 2]
    d = direction / direction.norm()
    e1 = torch.linalg.cross(d, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(d, e1)
    across = rho[:, None] * (angle.cos()[:, None] * e1 + angle.sin()[:, None] * e2)
    return t[:, None] * d + across


@pytest.mark.parametrize("shape", ["cone", "cylinder"])
@pytest.mark.parametrize(("t0", "t1", "radius"), INTERVALS)
def test_moments_match_monte_carlo(shape: str, t0: float, t1: float, radius: float) -> None:
    direction = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    d = direction / direction.norm()
    points = sample_frustum(d, t0, t1, radius, shape, 400_000)
    along = points @ d
    across = points - along[:, None] * d
    column = torch.tensor([[t0]], dtype=torch.float64), torch.tensor([[t1]], dtype=torch.float64)
    mean_t, var_t, var_r = frustum_moments(*column, torch.tensor([[radius]]).double(), shape)
    scale = t1 - t0
    assert mean_t.item() == pytest.approx(along.mean().item(), abs=2e-3 * scale)
    assert var_t.item() == pytest.approx(along.var().item(), rel=1e-2)
    # variance along one axis across the ray: half the mean squared distance from the axis
    assert var_r.item() == pytest.approx(0.5 * across.square().sum(-1).mean().item(), rel=1e-2)
    # lifted to world space, the diagonal covariance is that of the points
    mean, cov = frustum_gaussians(
        torch.zeros(1, 3, dtype=torch.float64), d[None], *column,
        torch.tensor([[radius]], dtype=torch.float64), shape,
    )  # fmt: skip
    torch.testing.assert_close(mean[0], points.mean(0), atol=2e-3 * scale, rtol=0)
    torch.testing.assert_close(cov[0], points.var(0), rtol=2e-2, atol=1e-7)


def test_cone_equals_the_direct_formulas() -> None:
    """Eq. 7 rearranges the frustum integrals; check against them in float64."""
    t0 = torch.tensor([[0.5], [2.0], [3.0]], dtype=torch.float64)
    t1 = torch.tensor([[1.5], [2.2], [6.0]], dtype=torch.float64)
    r = torch.tensor([[0.1], [0.02], [0.3]], dtype=torch.float64)
    mean_t, var_t, var_r = cone_moments(t0, t1, r)
    m1 = 3 * (t1**4 - t0**4) / (4 * (t1**3 - t0**3))
    m2 = 3 * (t1**5 - t0**5) / (5 * (t1**3 - t0**3))
    torch.testing.assert_close(mean_t, m1)
    torch.testing.assert_close(var_t, m2 - m1**2)
    torch.testing.assert_close(var_r, r**2 * m2 / 4)


def test_cone_is_stable_for_thin_far_intervals_in_float32() -> None:
    t0 = torch.tensor([[1000.0]])
    t1 = t0 + 1e-2
    mean_t, var_t, var_r = cone_moments(t0, t1, torch.tensor([[1e-3]]))
    assert torch.isfinite(mean_t).all() and torch.isfinite(var_t).all()
    h = (t1 - t0).item()  # 1e-2 as float32 spacing allows
    assert var_t.item() == pytest.approx(h**2 / 12, rel=1e-3)  # a thin slab: h^2 / 12
    assert var_r.item() == pytest.approx((1e-3 * 1000.005) ** 2 / 4, rel=1e-4)
    zero = cone_moments(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1))
    assert all(torch.isfinite(v).all() and v.item() == 0.0 for v in zero)


def test_cylinder_closed_forms() -> None:
    mean_t, var_t, var_r = cylinder_moments(
        torch.tensor([[1.0]]), torch.tensor([[3.0]]), torch.tensor([[0.4]])
    )
    assert (mean_t.item(), var_t.item()) == pytest.approx((2.0, 4.0 / 12.0))
    assert var_r.item() == pytest.approx(0.4**2 / 4)


def test_lift_diagonal_along_an_axis() -> None:
    cov = lift_diagonal(
        torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[2.0]]), torch.tensor([[0.5]])
    )
    torch.testing.assert_close(cov, torch.tensor([[0.5, 0.5, 2.0]]))


def test_unknown_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="cone"):
        frustum_moments(torch.ones(1, 1), torch.ones(1, 1), torch.ones(1, 1), "sphere")  # type: ignore[arg-type]


def test_core_pixel_radii_are_the_papers() -> None:
    """RayBundle.radii: pixel width * 2 / sqrt(12) at unit distance along the ray."""
    from atlas_core.api import pixel_rays

    focal, size = 50.0, 64
    cols, rows = torch.tensor([32, 0]), torch.tensor([32, 0])
    _, _, radii = pixel_rays(torch.eye(4), cols, rows, focal, size, size)
    # the pixel is 1 / focal wide on the image plane z = -1, which the ray meets at
    # distance |(x, y, -1)|; so at unit distance the width is 1 / (focal |(x, y, -1)|)
    x = (cols + 0.5 - size / 2) / focal
    y = (rows + 0.5 - size / 2) / focal
    plane_distance = torch.sqrt(x**2 + y**2 + 1.0)
    expected = (1.0 / focal) * 2.0 / 12.0**0.5 / plane_distance
    torch.testing.assert_close(radii.reshape(-1), expected)
