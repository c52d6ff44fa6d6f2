"""Intersection, lights, shadows and integrators on analytic SDFs."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_relight.brdf import unit
from atlas_plugin_relight.integrators import DirectIntegrator, PathIntegrator, cosine_sample
from atlas_plugin_relight.intersect import intersect
from atlas_plugin_relight.lights import (
    POSITIONS,
    POWER,
    SCALED,
    DatasetLight,
    LearnedLight,
    PointLight,
    incident,
)
from atlas_plugin_relight.material import Material
from atlas_plugin_relight.options import RelightOptions
from atlas_plugin_relight.shadows import HardShadow, LearnedShadow, NoShadow

from atlas_core.api import RayBundle


def sphere(center: tuple[float, float, float], radius: float):
    """An exact sphere SDF."""
    c = torch.tensor(center)
    return lambda x: (x - c).norm(dim=-1, keepdim=True) - radius


def two_spheres(x: torch.Tensor) -> torch.Tensor:
    """Union of a unit sphere at the origin and a small one at (0, 0, 2)."""
    return torch.minimum(sphere((0, 0, 0), 1.0)(x), sphere((0, 0, 2.0), 0.5)(x))


def rays_at(origins: torch.Tensor, dirs: torch.Tensor, extras: dict | None = None) -> RayBundle:
    """A bundle with near 0.1 and far 8."""
    ones = torch.ones(len(origins), 1)
    return RayBundle(origins, unit(dirs), 0.1 * ones, 8 * ones, ones * 1e-3,
                     torch.zeros(len(origins), dtype=torch.long), extras=extras or {})  # fmt: skip


@pytest.mark.parametrize("method", ["sphere", "bisection", "secant"])
def test_intersection_matches_the_analytic_sphere(method: str) -> None:
    offsets = torch.tensor([-0.9, -0.5, 0.0, 0.3, 0.7, 1.2])
    origins = torch.stack([offsets, torch.zeros(6), torch.full((6,), 4.0)], -1)
    dirs = torch.tensor([[0.0, 0.0, -1.0]]).expand(6, 3)
    near, far = torch.full((6, 1), 0.1), torch.full((6, 1), 8.0)
    hits = intersect(method, sphere((0, 0, 0), 1.0), origins, dirs, near, far, 64)
    expect = 4.0 - torch.sqrt(1 - offsets[:5] ** 2)
    assert hits.hit.tolist() == [True] * 5 + [False]
    assert torch.allclose(hits.t[:5, 0], expect, atol=2e-3)
    assert abs(float(hits.t_min[5, 0]) - 4.0) < 0.2  # the miss passes closest above the centre


def test_point_light_falls_off_with_the_inverse_square() -> None:
    x = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    light = PointLight([0.0, 0.0, 3.0], 8.0)
    positions, power = light(rays_at(x, torch.ones(2, 3)))
    wi, dist, radiance = incident(x, positions, power)
    assert torch.allclose(dist[:, 0, 0], torch.tensor([2.0, 1.0]))
    assert torch.allclose(radiance[:, 0, 0], torch.tensor([2.0, 8.0]))  # 8 / 4 and 8 / 1
    assert torch.allclose(wi[:, 0], torch.tensor([[0.0, 0, 1], [0.0, 0, 1]]))


def test_learned_light_trains_position_and_power() -> None:
    light = LearnedLight([0.0, 1.0, 2.0], 4.0)
    positions, power = light(rays_at(torch.zeros(3, 3), torch.ones(3, 3)))
    assert torch.allclose(power, torch.full((3, 1, 3), 4.0))
    (positions.sum() + power.sum()).backward()
    assert light.position.grad is not None and light.log_power.grad is not None


def test_dataset_light_reads_rays_and_falls_back_to_a_collocated_light() -> None:
    extras = {
        POSITIONS: torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]]).expand(2, 2, 3),
        POWER: torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]]).expand(2, 2, 3),
        SCALED: torch.tensor([1.0, 0.0]),
    }
    light = DatasetLight(intensity=5.0)
    positions, power = light(rays_at(torch.zeros(2, 3), torch.ones(2, 3), extras))
    assert positions.shape == (2, 2, 3) and power[0, 0, 0] == 1.0 and power[1, 0, 0] == 5.0
    assert float(power[:, 1].abs().sum()) == 0.0  # padding lights carry no power
    origins = torch.tensor([[0.0, 0.0, 4.0]])
    positions, power = light(rays_at(origins, -origins))  # no extras: free camera
    assert torch.equal(positions[:, 0], origins) and float(power.mean()) == 5.0


def test_hard_shadow_is_zero_behind_an_occluder_and_one_in_the_open() -> None:
    shadow = HardShadow(two_spheres, 48, (-5.0, -5.0, -5.0, 5.0, 5.0, 5.0))
    x = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    n = x.clone()
    lights = torch.tensor([[[0.0, 0.0, 4.0]], [[4.0, 0.0, 0.5]]])
    wi, dist, _ = incident(x, lights, torch.ones(2, 1, 3))
    visible = shadow(x, n, wi, dist)
    assert visible[:, 0, 0].tolist() == [0.0, 1.0]  # the small sphere blocks the top point
    assert torch.equal(NoShadow()(x, n, wi, dist), torch.ones(2, 1, 1))


def laplace_density(sdf, beta: float = 0.0025):  # noqa: ANN001, ANN201
    """VolSDF's density of an SDF (eq. 2 and 3, alpha = 1 / beta) as a function of points."""

    def density(p: torch.Tensor) -> torch.Tensor:
        d = sdf(p)
        outside = 0.5 * torch.exp(-d.clamp_min(0.0) / beta)
        return torch.where(d > 0, outside, 1.0 - 0.5 * torch.exp(d.clamp_max(0.0) / beta)) / beta

    return density


def test_volume_shadow_is_as_wide_as_a_volume_rendered_silhouette() -> None:
    # shadow rays straight up past a sphere of radius 0.4, 0.01 inside to 0.02 outside
    # its zero level: under the density camera rays see (beta 0.0025), the grazing ones
    # are partly blocked, about half of them 3 beta out; the binary test passes them all
    box = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    gaps = torch.tensor([-0.01, 0.003, 0.0075, 0.02])
    x = torch.stack([0.4 + gaps, torch.zeros(4), torch.full((4,), -1.0)], dim=-1)
    n = torch.tensor([[0.0, 0.0, 1.0]]).expand(4, 3)
    wi, dist, _ = incident(x, (x + torch.tensor([0.0, 0.0, 5.0]))[:, None], torch.ones(4, 1, 3))
    hard = HardShadow(sphere((0.0, 0.0, 0.0), 0.4), 64, box)(x, n, wi, dist)[:, 0, 0]
    ball = sphere((0.0, 0.0, 0.0), 0.4)
    volume = HardShadow(ball, 64, box, laplace_density(ball))
    soft = volume(x, n, wi, dist)[:, 0, 0]
    assert hard.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert float(soft[0]) == 0.0 and float(soft[1]) < 0.1 and 0.2 < float(soft[2]) < 0.8
    assert float(soft[3]) > 0.95
    # a light low over a plane: the ray leaving it is dimmed only past CLEAR
    x, n = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 1.0]])
    light = torch.tensor([[[1.0, 0.0, math.tan(math.radians(5.0))]]])
    wi, dist, _ = incident(x, light, torch.ones(1, 1, 3))
    floor = lambda p: p[:, 2:]  # noqa: E731
    plane = HardShadow(floor, 64, box, laplace_density(floor))
    assert float(plane(x, n, wi, dist)) > 0.99  # 0.90 counted from the start point


def box_grid_sdf(positions: torch.Tensor) -> torch.Tensor:
    """A sphere of radius 0.3 as an SDF grid over [-1.5, 1.5]^3 reads it: the distance
    to the box outside it (near zero just past a face)."""
    inside = (positions.abs() <= 1.5).all(dim=-1, keepdim=True)
    gap = (positions.abs() - 1.5).clamp_min(0.0).norm(dim=-1, keepdim=True)
    return torch.where(inside, positions.norm(dim=-1, keepdim=True) - 0.3, gap)


def test_hard_shadow_ends_at_the_scene_box() -> None:
    # Toward a light above y = 1.5, the first step from y = 0.9 (0.6 from the sphere)
    # lands just past the box's face, where the grid reads the distance to the box
    box = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    x = torch.tensor([[0.0, 0.9, 0.0], [0.0, -0.9, 0.0]])  # the second behind the sphere
    n = torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 3)
    lights = torch.tensor([[[0.0, 6.0, 0.01]]]).expand(2, 1, 3)
    wi, dist, _ = incident(x, lights, torch.ones(2, 1, 3))
    beyond = HardShadow(box_grid_sdf, 48, tuple(2 * b for b in box))(x, n, wi, dist)
    visible = HardShadow(box_grid_sdf, 48, box)(x, n, wi, dist)
    assert beyond[:, 0, 0].tolist() == [0.0, 0.0]  # past the face the first is blocked
    assert visible[:, 0, 0].tolist() == [1.0, 0.0]  # the sphere still blocks the second


def test_learned_shadow_starts_visible_and_has_gradients() -> None:
    shadow = LearnedShadow(16)
    x, wi = torch.randn(5, 3), unit(torch.randn(5, 2, 3))
    visible = shadow(x, x, wi, torch.ones(5, 2, 1))
    assert visible.shape == (5, 2, 1) and bool((visible > 0.8).all())
    visible.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in shadow.parameters())


def test_cosine_samples_have_the_cosine_mean() -> None:
    n = torch.tensor([[0.0, 0.0, 1.0]]).expand(100_000, 3)
    w = cosine_sample(n)
    assert torch.allclose(w.norm(dim=-1), torch.ones(100_000), atol=1e-5)
    assert bool((w[:, 2] >= 0).all()) and abs(float(w[:, 2].mean()) - 2 / 3) < 0.01


def test_path_adds_indirect_light_only_where_a_bounce_meets_the_surface() -> None:
    torch.manual_seed(0)
    material = Material(RelightOptions(reflectance=["diffuse"], width=8))
    light = torch.tensor([2.0, 0.0, 1.3])
    x = torch.tensor([[0.0, 0.0, 1.0]]).expand(4000, 3)  # the top, under the small sphere
    n, wo = x.clone(), unit(torch.tensor([[1.0, 0.0, 1.0]])).expand(4000, 3)
    args = (material, NoShadow(), x, n, wo, light.expand(4000, 1, 3), torch.ones(4000, 1, 3))
    direct = DirectIntegrator()(*args)
    with torch.no_grad():
        path_two = PathIntegrator(two_spheres, 8.0, 64)(*args)
        path_one = PathIntegrator(sphere((0, 0, 0), 1.0), 8.0, 64)(*args)
    assert torch.allclose(path_one, direct)  # a convex object never sees itself
    assert float(path_two.mean()) > float(direct.detach().mean()) * 1.01
    assert math.isfinite(float(path_two.sum()))
