"""The ``importance`` sampler: coarse bins plus samples drawn from the field's own density."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_volsdf.sampler import FieldImportanceSampler
from test_volsdf_field import make_field, make_samples

from atlas_core.api import ConfigError, Field


def test_fine_samples_gather_at_the_surface() -> None:
    torch.manual_seed(0)
    field = make_field(radius=0.8, beta_init=0.02)
    rays = make_samples(rays=32).rays  # rays from distance 3 through the origin
    sampler = FieldImportanceSampler(coarse=16, fine=48)
    samples, extras = sampler(rays, field)
    assert extras == {}
    assert samples.t_starts.shape == (32 * 64, 1)
    starts = samples.t_starts.view(32, 64)
    assert (starts[:, 1:] >= starts[:, :-1]).all()  # sorted per ray
    assert torch.equal(samples.t_ends.view(32, 64)[:, :-1], starts[:, 1:])  # contiguous
    near_surface = (samples.positions.norm(dim=-1) - 0.8).abs() < 0.15
    uniform = FieldImportanceSampler(coarse=64, fine=0)(rays, field)[0]
    near_uniform = (uniform.positions.norm(dim=-1) - 0.8).abs() < 0.15
    assert near_surface.float().mean() > 2 * near_uniform.float().mean()


def test_no_gradient_flows_through_the_coarse_pass() -> None:
    field = make_field()
    samples, _ = FieldImportanceSampler(8, 8)(make_samples(rays=4).rays, field)
    assert not samples.t_starts.requires_grad


def test_needs_a_field_with_density_and_valid_counts() -> None:
    with pytest.raises(ConfigError, match="density"):
        FieldImportanceSampler(4, 4)(make_samples(rays=2).rays, Field())
    with pytest.raises(ValueError, match="coarse"):
        FieldImportanceSampler(0, 4)
    with pytest.raises(ValueError, match="fine"):
        FieldImportanceSampler(4, -1)
