"""VolSDFField: sphere initialisation, outputs, gradients, bounding sphere, encodings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_volsdf.field import VolSDFField

from atlas_core.api import IdentityEncoding, PositionalEncoding, RayBundle, samples_from_bins

SMALL = {"width": 64, "depth": 4, "features": 16, "color_width": 16, "color_depth": 1}


def make_field(encoding: str = "positional", **options: object) -> VolSDFField:
    """A small field with the given position encoding."""

    def make_encoding(in_dim: int) -> torch.nn.Module:
        if encoding == "identity":
            return IdentityEncoding(in_dim)
        return PositionalEncoding(in_dim, 6)

    return VolSDFField(SimpleNamespace(make_encoding=make_encoding), **{**SMALL, **options})


def make_samples(rays: int = 16, per_ray: int = 12, seed: int = 0):  # noqa: ANN201
    """Packed samples along random rays towards the origin."""
    generator = torch.Generator().manual_seed(seed)
    origins = torch.randn(rays, 3, generator=generator)
    origins = 3.0 * origins / origins.norm(dim=-1, keepdim=True)
    directions = -origins / origins.norm(dim=-1, keepdim=True)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(origins, directions, 1 * ones, 5 * ones, 1e-3 * ones, torch.zeros(rays))
    edges = torch.linspace(1.0, 5.0, per_ray + 1).expand(rays, per_ray + 1)
    return samples_from_bins(bundle, edges)


def random_points(count: int = 2000, scale: float = 1.4, seed: int = 1) -> torch.Tensor:
    """Uniform points in a cube."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 3, generator=generator) * 2 - 1) * scale


@pytest.mark.parametrize("encoding", ["positional", "identity"])
def test_geometric_init_is_a_sphere_of_the_radius_option(encoding: str) -> None:
    torch.manual_seed(0)
    field = make_field(encoding, radius=0.7)
    points = random_points()
    sdf = field.sdf(points).squeeze(-1)
    true = points.norm(dim=-1) - 0.7
    assert (sdf - true).abs().mean() < 0.05
    far = true.abs() > 0.15
    assert (torch.sign(sdf[far]) == torch.sign(true[far])).float().mean() > 0.98


def test_outputs_shapes_and_unit_normals_pointing_out_at_init() -> None:
    torch.manual_seed(0)
    field = make_field(radius=0.8)
    samples = make_samples()
    out = field(samples)
    n = samples.t_starts.shape[0]
    for key, width in {"density": 1, "rgb": 3, "sdf": 1, "normals": 3, "sdf_gradients": 3}.items():
        assert out[key].shape == (n, width), key
        assert torch.isfinite(out[key]).all(), key
    assert torch.allclose(out["normals"].norm(dim=-1), torch.ones(n), atol=1e-4)
    radial = samples.positions / samples.positions.norm(dim=-1, keepdim=True)
    assert (out["normals"] * radial).sum(-1).mean() > 0.95
    assert (out["sdf_gradients"].norm(dim=-1) - 1).abs().mean() < 0.15  # eikonal at init
    assert ((out["rgb"] > 0) & (out["rgb"] < 1)).all() and (out["density"] >= 0).all()
    assert torch.allclose(field.density(samples.positions), out["density"], atol=1e-5)


def test_training_keeps_the_gradient_graph_and_eval_detaches() -> None:
    torch.manual_seed(0)
    field = make_field()
    field.train()
    out = field(make_samples())
    assert out["sdf_gradients"].requires_grad
    eikonal = (out["sdf_gradients"].norm(dim=-1) - 1).square().mean()
    eikonal.backward()  # second derivatives reach the SDF network's weights
    first = field.sdf_network.layers[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    field.eval()
    with torch.no_grad():  # as Pipeline.render calls it: normals still come out
        out = field(make_samples())
    assert not any(value.requires_grad for value in out.values())
    assert torch.isfinite(out["normals"]).all() and out["normals"].abs().sum() > 0


def test_rgb_loss_trains_sdf_colour_and_beta() -> None:
    torch.manual_seed(0)
    field = make_field()
    out = field(make_samples())
    (out["rgb"].mean() + out["density"].mean()).backward()
    grads = {name: p.grad for name, p in field.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["laplace.beta_param"].abs() > 0
    assert grads["color_mlp.0.weight"].abs().sum() > 0
    assert grads["sdf_network.head.weight"].abs().sum() > 0


def test_bounding_sphere_clips_the_sdf() -> None:
    torch.manual_seed(0)
    field = make_field(radius=0.5, bound_radius=1.0)
    points = random_points(scale=1.5)
    sdf = field.sdf(points).squeeze(-1)
    bound = 1.0 - points.norm(dim=-1)
    assert (sdf <= bound + 1e-6).all()
    outside = points.norm(dim=-1) > 1.05
    assert (sdf[outside] < 0).all()  # VolSDF: outside the bounding sphere is solid
    free = make_field(radius=0.5)
    assert (free.sdf(points).squeeze(-1)[outside] > 0).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bound_radius": -1.0}, "bound_radius"),
        ({"radius": 1.0, "bound_radius": 0.5}, "bound_radius"),
        ({"radius": 0.0}, "radius"),
        ({"skips": (0,)}, "skips"),
        ({"width": 0}, "width"),
        ({"color_depth": 0}, "color"),
    ],
)
def test_bad_options_raise(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_field(**options)


def test_skips_and_depth_change_the_network() -> None:
    plain = make_field(skips=(), depth=3)
    skipped = make_field(skips=(1, 2), depth=3)
    assert plain.sdf_network.layers[1].in_features == 64
    assert skipped.sdf_network.layers[1].in_features == 64 + 3 + 39
    assert skipped.sdf_network.layers[2].in_features == 64 + 3 + 39
    assert torch.isfinite(skipped(make_samples())["sdf"]).all()


def test_deterministic_under_a_seed() -> None:
    samples = make_samples()
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(make_field()(samples))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), key


def test_gradient_flows_into_displaced_positions() -> None:
    """A deformation (as D-NeRF's wrapper) upstream of the field still gets gradients."""
    torch.manual_seed(0)
    field = make_field()
    samples = make_samples()
    offset = torch.zeros(3, requires_grad=True)
    moved = samples.with_positions(samples.positions + offset)
    out = field(moved)
    (out["rgb"].sum() + out["sdf_gradients"].norm(dim=-1).sum()).backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0
    expected = field.sdf(samples.positions)
    assert torch.allclose(out["sdf"], expected, atol=1e-5)


def test_beta_property_reports_the_scale() -> None:
    assert make_field(beta_init=0.05).beta == pytest.approx(0.05)
