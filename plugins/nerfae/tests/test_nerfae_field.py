"""NeRFAEField: outputs, latent normalisations, view dependence, options."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_nerfae.field import LatentNorm, NeRFAEField

from atlas_core.api import PositionalEncoding, RayBundle, RaySamples


def make_field(**options) -> NeRFAEField:  # noqa: ANN003
    """A small field with the core's positional encoding."""
    context = SimpleNamespace(make_encoding=lambda in_dim: PositionalEncoding(in_dim, 4))
    torch.manual_seed(0)
    return NeRFAEField(context, **{"width": 16, "decoder_width": 16, **options})


def make_samples(rays: int = 5, per_ray: int = 4, seed: int = 0) -> RaySamples:
    """Packed samples along random rays."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(rays, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(torch.zeros(rays, 3), directions, ones, 2 * ones, 1e-3 * ones,
                       torch.zeros(rays, dtype=torch.long))  # fmt: skip
    starts = torch.linspace(0.2, 1.0, per_ray).repeat(rays)[:, None]
    return RaySamples(bundle, starts, starts + 0.1, torch.arange(rays).repeat_interleave(per_ray))


def test_outputs_keys_shapes_and_ranges() -> None:
    field = make_field(latent_size=7)
    out = field(make_samples())
    assert set(out) == {"density", "rgb", "latent"}
    assert out["density"].shape == (20, 1) and out["rgb"].shape == (20, 3)
    assert out["latent"].shape == (20, 7)
    assert (out["density"] >= 0).all() and ((out["rgb"] >= 0) & (out["rgb"] <= 1)).all()
    loss = sum(value.sum() for value in out.values())
    loss.backward()
    grads = [p.grad for p in field.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_density_query_matches_forward() -> None:
    field = make_field()
    samples = make_samples()
    torch.testing.assert_close(field.density(samples.positions), field(samples)["density"])


def test_colour_depends_on_view_density_and_latent_do_not() -> None:
    field = make_field()
    samples = make_samples()
    bundle = samples.rays
    turned = RayBundle(bundle.origins, -bundle.directions, bundle.near, bundle.far,
                       bundle.radii, bundle.camera_indices)  # fmt: skip
    same_points = RaySamples(turned, samples.t_starts, samples.t_ends, samples.ray_indices)
    a, b = field(samples), field(same_points.with_positions(samples.positions))
    torch.testing.assert_close(a["latent"], b["latent"])
    torch.testing.assert_close(a["density"], b["density"])
    assert not torch.allclose(a["rgb"], b["rgb"])


@pytest.mark.parametrize("kind", ["none", "l2", "layer"])
def test_normalisations(kind: str) -> None:
    field = make_field(latent_size=8, normalization=kind)
    latent = field(make_samples())["latent"]
    if kind == "l2":
        torch.testing.assert_close(latent.norm(dim=-1), torch.ones(20))
    elif kind == "layer":  # zero mean, unit variance per code (gain 1, bias 0 at start)
        torch.testing.assert_close(latent.mean(dim=-1), torch.zeros(20), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            latent.var(dim=-1, unbiased=False), torch.ones(20), atol=1e-3, rtol=0
        )
        assert isinstance(field.norm.layer, torch.nn.LayerNorm)
    else:
        raw = field.encoder(field.encoding(make_samples().positions))
        torch.testing.assert_close(latent, raw)


def test_encoder_depth_decoder_width_and_view_frequencies() -> None:
    field = make_field(latent_size=5, depth=3, decoder_width=12, dir_frequencies=2)
    linears = [m for m in field.encoder if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 and linears[0].out_features == 16  # 3 hidden layers of width
    assert field.dir_encoding.out_dim == 3 * (2 * 2 + 1)
    assert field.colour_decoder[0].in_features == 5 + 15
    assert field.density_decoder[0].out_features == 12 == field.colour_decoder[0].out_features
    assert field(make_samples())["latent"].shape == (20, 5)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="latent_size"):
        make_field(latent_size=0)
    with pytest.raises(ValueError, match="normalization"):
        LatentNorm("batch", 4)  # type: ignore[arg-type]
