"""Integrated positional encoding: the PE limit, decay with variance, eq. 14 by sampling."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_mip.encoding import IntegratedPositionalEncoding, integrated_encoding

from atlas_core.api import PositionalEncoding, RayBundle, RaySamples


def make_samples(radius: float, width: float, rays: int = 8, per_ray: int = 6) -> RaySamples:
    """Intervals of ``width`` along random rays with pixel radius ``radius``."""
    generator = torch.Generator().manual_seed(1)
    origins = torch.randn(rays, 3, generator=generator)
    directions = torch.randn(rays, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(origins, directions, ones, 3 * ones, radius * ones, torch.zeros(rays))
    starts = torch.linspace(1.0, 3.0, per_ray).repeat(rays)[:, None]
    indices = torch.arange(rays).repeat_interleave(per_ray)
    return RaySamples(bundle, starts, starts + width, indices)


@pytest.mark.parametrize("shape", ["cone", "cylinder"])
def test_equals_positional_encoding_as_covariance_vanishes(shape: str) -> None:
    ipe = IntegratedPositionalEncoding(3, 8, shape=shape)
    pe = PositionalEncoding(3, 8)
    samples = make_samples(radius=0.0, width=1e-6)
    torch.testing.assert_close(
        ipe.encode_samples(samples), pe(samples.positions), atol=1e-4, rtol=0
    )
    points = torch.randn(5, 3)
    torch.testing.assert_close(ipe(points), pe(points))  # bare positions: plain PE


def test_features_decay_with_variance_and_frequency() -> None:
    ipe = IntegratedPositionalEncoding(3, 6, include_input=False)
    magnitudes = []
    for radius in (1e-3, 1e-2, 1e-1):
        features = ipe.encode_samples(make_samples(radius=radius, width=0.05))
        sin, cos = features.chunk(2, dim=-1)
        magnitudes.append((sin.square() + cos.square()).sqrt().view(-1, 6, 3))
    small, mid, large = magnitudes
    assert (mid <= small + 1e-6).all() and (large <= mid + 1e-6).all()
    assert large[:, -1].mean() < 0.5 * small[:, -1].mean()  # fine detail is blurred away
    per_frequency = large.mean(dim=(0, 2))
    assert (per_frequency[1:] <= per_frequency[:-1] + 1e-6).all()
    # the damping is exactly exp(-4^k var / 2)
    mean, var = ipe.gaussians(make_samples(radius=0.1, width=0.05))
    expected = torch.exp(-0.5 * var[:, None, :] * ipe.freqs.square()[:, None])
    torch.testing.assert_close(large, expected, atol=1e-5, rtol=1e-4)


def test_matches_the_expected_encoding_of_the_gaussian() -> None:
    """Mip-NeRF eq. 14 by sampling x ~ N(mean, diag(var))."""
    mean = torch.tensor([[0.3, -0.2, 0.7]], dtype=torch.float64)
    var = torch.tensor([[0.01, 0.002, 0.03]], dtype=torch.float64)
    freqs = 2.0 ** torch.arange(4, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    x = mean + var.sqrt() * torch.randn(400_000, 3, generator=generator, dtype=torch.float64)
    sampled = PositionalEncoding(3, 4).double()(x).mean(dim=0, keepdim=True)
    closed = integrated_encoding(mean, var, freqs, include_input=True)
    torch.testing.assert_close(closed, sampled, atol=5e-3, rtol=0)


def test_moved_samples_move_the_mean_and_carry_gradients() -> None:
    ipe = IntegratedPositionalEncoding(3, 4)
    samples = make_samples(radius=0.01, width=0.2)
    mean, _ = ipe.gaussians(samples)
    offset = torch.tensor([0.5, 0.0, -0.25], requires_grad=True)
    moved_mean, _ = ipe.gaussians(samples.with_positions(samples.positions + offset))
    torch.testing.assert_close(moved_mean - mean, offset.detach().expand_as(mean))
    moved_mean.sum().backward()
    assert offset.grad is not None and torch.isfinite(offset.grad).all()


def test_rejects_other_dimensions_and_shapes() -> None:
    with pytest.raises(ValueError, match="in_dim=4"):
        IntegratedPositionalEncoding(4)
    with pytest.raises(ValueError, match="cylinder"):
        IntegratedPositionalEncoding(3, shape="box")  # type: ignore[arg-type]
