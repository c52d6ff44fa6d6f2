"""Zip-NeRF anti-aliasing of the hash grid: frustum multisamples and level weights."""

from __future__ import annotations

import torch
from atlas_plugin_ngp.hash_encoding import HashEncoding
from test_ngp_field import make_field, make_samples

from atlas_core.api import level_weights


def test_point_footprints_average_the_plain_features() -> None:
    encoding = HashEncoding(3, levels=4, features=2, log2_table=10, finest_resolution=64)
    torch.nn.init.uniform_(encoding.table, -1.0, 1.0)
    points = torch.rand(50, 3, 3)
    plain = encoding.encode_unit(points.view(-1, 3)).view(50, 3, -1).mean(dim=1)
    footprints = encoding.encode_footprints(points, torch.zeros(50, 3))
    assert torch.allclose(footprints, plain, atol=1e-6)


def test_levels_finer_than_the_footprint_fade() -> None:
    encoding = HashEncoding(3, levels=4, features=2, log2_table=10, finest_resolution=64)
    torch.nn.init.uniform_(encoding.table, -1.0, 1.0)
    points = torch.rand(50, 1, 3)
    stds = torch.full((50, 1), 0.02)  # coarser than the finest cells (1/64), finer than 1/16
    features = encoding.encode_footprints(points, stds).view(50, 4, 2)
    plain = encoding.encode_unit(points.view(-1, 3)).view(50, 4, 2)
    weights = level_weights(torch.tensor(0.02), encoding.level_scale)
    assert torch.allclose(features, plain * weights[:, None], atol=1e-6)
    assert weights[0] > 0.8 and weights[-1] < 0.35


def test_antialias_changes_wide_cones_and_keeps_gradients() -> None:
    field = make_field()
    torch.nn.init.uniform_(field.encoding.table, -1.0, 1.0)
    samples = make_samples()
    samples.rays.radii = torch.full_like(samples.rays.radii, 0.05)  # wide cones
    plain = field(samples)
    field.antialias(6)
    field.eval()  # no random turn of the multisample pattern
    wide = field(samples)
    assert not torch.allclose(wide["density"], plain["density"])
    assert torch.equal(field(samples)["density"], wide["density"])
    field.train()
    field.zero_grad()
    out = field(samples)
    (out["density"].mean() + out["rgb"].mean()).backward()
    assert field.encoding.table.grad.abs().sum() > 0
    assert torch.allclose(field.density(samples.positions), plain["density"])  # points


def test_antialias_of_narrow_cones_is_the_point_field() -> None:
    field = make_field()
    samples = make_samples()
    samples.rays.radii = torch.full_like(samples.rays.radii, 1e-9)
    plain = field(samples)
    field.antialias(1)
    assert torch.allclose(field(samples)["density"], plain["density"], rtol=1e-5)
