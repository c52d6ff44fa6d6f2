"""NGPField and the spherical-harmonics view encoding."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_ngp.field import NGPField
from atlas_plugin_ngp.spherical_harmonics import SphericalHarmonics

from atlas_core.api import RayBundle, samples_from_bins

BOUNDS = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
SMALL = {"levels": 6, "log2_table": 12, "finest_resolution": 128}


def make_field(**options: int) -> NGPField:
    """A small NGP field over the default scene box."""
    context = SimpleNamespace(scene=SimpleNamespace(bounds=BOUNDS))
    return NGPField(context, **{**SMALL, **options})


def make_samples(rays: int = 32, per_ray: int = 16, seed: int = 0):  # noqa: ANN201
    """Packed samples along random rays through the box."""
    generator = torch.Generator().manual_seed(seed)
    origins = torch.randn(rays, 3, generator=generator)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    directions = -origins + 0.5 * torch.randn(rays, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(origins, directions, 2 * ones, 6 * ones, 1e-3 * ones, torch.zeros(rays))
    edges = torch.linspace(2.0, 6.0, per_ray + 1).expand(rays, per_ray + 1)
    return samples_from_bins(bundle, edges)


def test_output_shapes_and_ranges() -> None:
    field = make_field()
    samples = make_samples()
    out = field(samples)
    n = samples.t_starts.shape[0]
    assert out["density"].shape == (n, 1) and out["rgb"].shape == (n, 3)
    assert (out["density"] >= 0).all() and ((out["rgb"] > 0) & (out["rgb"] < 1)).all()
    assert field.density(samples.positions).shape == (n, 1)
    assert torch.allclose(field.density(samples.positions), out["density"])


def test_density_is_zero_outside_the_box() -> None:
    field = make_field()
    outside = torch.tensor([[2.0, 0.0, 0.0], [0.0, -1.6, 0.0], [0.0, 0.0, 9.0]])
    inside = torch.tensor([[0.0, 0.0, 0.0], [1.4, -1.4, 1.4]])
    assert torch.equal(field.density(outside), torch.zeros(3, 1))
    assert (field.density(inside) > 0).all()


def test_gradients_reach_the_table_and_both_mlps() -> None:
    field = make_field()
    out = field(make_samples())
    (out["density"].mean() + out["rgb"].square().mean()).backward()
    grads = {name: p.grad for name, p in field.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["encoding.table"].abs().sum() > 0
    assert grads["density_mlp.layers.0.weight"].abs().sum() > 0
    assert grads["color_mlp.layers.0.weight"].abs().sum() > 0


def test_deterministic_under_a_seed() -> None:
    samples = make_samples()
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        outputs.append(make_field()(samples))
    assert torch.equal(outputs[0]["rgb"], outputs[1]["rgb"])
    assert torch.equal(outputs[0]["density"], outputs[1]["density"])


def test_colour_depends_on_view_direction() -> None:
    torch.manual_seed(0)
    field = make_field()
    with torch.no_grad():
        field.encoding.table.normal_()
    a, b = make_samples(seed=1), make_samples(seed=1)
    b.rays.directions = -b.rays.directions
    b = b.with_positions(a.positions)  # same points, opposite views
    assert not torch.allclose(field(a)["rgb"], field(b)["rgb"])
    assert torch.equal(field(a)["density"], field(b)["density"])


def test_bad_hidden_width_raises() -> None:
    with pytest.raises(ValueError, match="hidden"):
        make_field(hidden=0)


def test_spherical_harmonics_are_orthonormal() -> None:
    torch.manual_seed(0)
    directions = torch.randn(400_000, 3, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    basis = SphericalHarmonics(degree=4)(directions)
    assert basis.shape == (400_000, 16)
    gram = 4 * math.pi * basis.T @ basis / len(directions)  # Monte Carlo over the sphere
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.03)


def test_spherical_harmonics_degrees() -> None:
    d = torch.tensor([[0.0, 0.0, 1.0]])
    assert SphericalHarmonics(degree=1)(d).shape == (1, 1)
    assert SphericalHarmonics(degree=3)(d).shape == (1, 9)
    # along +z only the m = 0 functions are non-zero
    nonzero = SphericalHarmonics(degree=4)(d)[0].abs() > 1e-12
    assert nonzero.nonzero().view(-1).tolist() == [0, 2, 6, 12]
    with pytest.raises(ValueError):
        SphericalHarmonics(degree=5)
