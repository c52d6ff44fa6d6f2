"""Reflectance models: shapes, gradients, reciprocity, energy, mixtures."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_relight.brdf import GGX, BlinnPhong, Diffuse, ggx, unit
from atlas_plugin_relight.learned_brdf import (
    FourierReflectance,
    MLPReflectance,
    SHReflectance,
    real_sh,
)
from atlas_plugin_relight.material import Material
from atlas_plugin_relight.options import RelightOptions

MODELS = [
    Diffuse(),
    BlinnPhong(),
    GGX(),
    MLPReflectance(16),
    SHReflectance(2),
    FourierReflectance(3),
]
IDS = ["diffuse", "blinn_phong", "ggx", "mlp", "sh", "fourier"]


def hemisphere(count: int, n: torch.Tensor, seed: int) -> torch.Tensor:
    """Random unit vectors on the hemisphere about ``n`` [R, 3]."""
    g = torch.Generator().manual_seed(seed)
    v = unit(torch.randn(count, 3, generator=g))
    return torch.where((v * n).sum(-1, keepdim=True) < 0, -v, v)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_shapes_positive_and_finite_gradients(model: torch.nn.Module) -> None:
    rays, lights = 64, 2
    n = unit(torch.randn(rays, 3))
    wo = hemisphere(rays, n, 1)
    wi = torch.stack([hemisphere(rays, n, 2), hemisphere(rays, n, 3)], dim=1)
    raw = torch.randn(rays, model.params, requires_grad=True)
    f = model(raw, n, wi, wo)
    assert f.shape == (rays, lights, 3)
    assert bool((f >= 0).all()) and bool(torch.isfinite(f).all())
    f.sum().backward()
    assert raw.grad is not None and bool(torch.isfinite(raw.grad).all())
    assert float(raw.grad.abs().sum()) > 0


@pytest.mark.parametrize("index", [0, 1, 2, 4, 5], ids=[IDS[i] for i in (0, 1, 2, 4, 5)])
def test_analytic_and_basis_models_are_reciprocal(index: int) -> None:
    model = MODELS[index]
    n = unit(torch.randn(32, 3))
    a, b = hemisphere(32, n, 4), hemisphere(32, n, 5)
    raw = torch.randn(32, model.params)
    forward = model(raw, n, a[:, None], b)
    backward = model(raw, n, b[:, None], a)
    assert torch.allclose(forward, backward, atol=1e-5)


def test_lambert_reflects_its_albedo_and_ggx_lobe_conserves_energy() -> None:
    count = 200_000
    n = torch.tensor([[0.0, 0.0, 1.0]]).expand(count, 3)
    wi = hemisphere(count, n, 6)  # uniform: pdf 1 / (2 pi)
    cos = wi[:, 2:3]
    wo = unit(torch.tensor([[0.3, 0.0, 1.0]])).expand(count, 3)
    raw = torch.full((count, 3), math.log(0.6 / 0.4))  # sigmoid -> albedo 0.6
    lambert = Diffuse()(raw, n, wi[:, None], wo)[:, 0]
    reflected = (lambert * cos).mean(0) * 2 * math.pi
    assert torch.allclose(reflected, torch.full((3,), 0.6), atol=0.01)
    zero = torch.zeros(count, 3)
    for rough in (0.2, 0.5, 1.0):
        lobe = ggx(zero, torch.full((count, 1), rough), torch.ones(count, 1), n, wi[:, None], wo)
        albedo = float((lobe[:, 0, 0:1] * cos).mean() * 2 * math.pi)
        assert 0.3 < albedo <= 1.02, (rough, albedo)


def test_real_sh_is_orthonormal() -> None:
    d = unit(torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0)))
    basis = real_sh(d, 2)
    gram = basis.T @ basis / d.shape[0] * 4 * math.pi
    assert torch.allclose(gram, torch.eye(9), atol=0.03)


def test_material_mixture_is_the_weighted_sum_of_its_models() -> None:
    options = RelightOptions(reflectance=["diffuse", "ggx"], weights=[3.0, 1.0], width=16)
    material = Material(options)
    x, n = torch.randn(8, 3), unit(torch.randn(8, 3))
    wo, wi = hemisphere(8, n, 7), hemisphere(8, n, 8)[:, None]
    raw = material.parameters_at(x)
    expect = 0.75 * Diffuse()(raw[:, :3], n, wi, wo) + 0.25 * GGX()(raw[:, 3:], n, wi, wo)
    assert torch.allclose(material(x, n, wi, wo), expect, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reflectance": ["phong"]}, "reflectance must be"),
        ({"reflectance": ["diffuse"], "weights": [1.0, 2.0]}, "weights has 2 entries"),
        ({"weights": [-1.0]}, "weights must be >= 0"),
        ({"light_intensity": 0.0}, "light_intensity"),
        ({"sh_degree": 3}, "sh_degree"),
    ],
)
def test_bad_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RelightOptions(**options)


def test_grid_material_is_local_and_sized_by_its_options() -> None:
    options = RelightOptions(reflectance=["diffuse"], encoding="grid", grid_resolution=17,
                             grid_features=5, width=8)  # fmt: skip
    material = Material(options, (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0))
    assert tuple(material.encoding.values.shape) == (17**3, 5)
    near, far = torch.tensor([[0.5, 0.5, 0.5]]), torch.tensor([[-0.5, -0.5, -0.5]])
    before = material.parameters_at(far).detach()
    material.parameters_at(near).sum().backward()
    with torch.no_grad():
        material.encoding.values -= material.encoding.values.grad.to_dense()
    assert not torch.equal(material.parameters_at(near), before)
    assert torch.equal(material.parameters_at(far).detach(), before)  # a texel is local
    smooth = Material(RelightOptions(reflectance=["diffuse"], encoding="positional", width=8))
    assert not hasattr(smooth.encoding, "values")


def test_bad_grid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="encoding must be"):
        RelightOptions(encoding="hash")
    with pytest.raises(ValueError, match="grid_resolution"):
        RelightOptions(grid_resolution=1)
    with pytest.raises(ValueError, match="geometry must be"):
        RelightOptions(geometry="shaded")
