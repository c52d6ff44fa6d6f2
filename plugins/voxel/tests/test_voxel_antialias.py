"""Zip-NeRF multisampling of the voxel grids (``antialias``, turned on by ``mip``)."""

from __future__ import annotations

import torch
from test_voxel_field import make_field, make_samples, randomise

from atlas_core.api import frustum_multisamples


def test_wide_frustums_average_the_grids_over_their_points() -> None:
    field = make_field()
    randomise(field)
    field.eval()
    samples = make_samples()
    samples.rays.radii = torch.full_like(samples.rays.radii, 0.05)  # cones several voxels wide
    plain = field(samples)
    field.antialias(6)
    wide = field(samples)
    assert not torch.allclose(wide["density"], plain["density"])
    points, _ = frustum_multisamples(samples, 6)
    raw = field.lookup(field.density_grid, points.view(-1, 3))[0]
    inside = field.corners(samples.positions).inside
    expected = field.activate(raw.view(-1, 6).mean(dim=1, keepdim=True), inside)
    assert torch.allclose(wide["density"], expected, atol=1e-6)


def test_one_multisample_is_the_point_field_and_gradients_flow() -> None:
    field = make_field()
    randomise(field)
    samples = make_samples()
    plain = field(samples)
    field.antialias(1)
    out = field(samples)
    assert torch.allclose(out["density"], plain["density"], atol=1e-6)
    field.antialias(4)
    out = field(samples)
    (out["density"].mean() + out["rgb"].mean()).backward()
    assert field.density_grid.grad is not None and field.feature_grid.grad is not None
