"""The K-Planes space-time field, its regularisers and its time-aware occupancy."""

from __future__ import annotations

import types

import pytest
import torch
from atlas_plugin_dnerf.field import DeformedDensityField, deform
from atlas_plugin_dnerf.kplanes import KPlanesField, max_over_time
from atlas_plugin_dnerf.plane_losses import plane_tv, static_time, time_smoothness

from atlas_core.api import RayBundle, RaySamples, parameter_tags

CONTEXT = types.SimpleNamespace(scene=types.SimpleNamespace(bounds=(-1.0,) * 3 + (1.0,) * 3))


def kplanes(**options: object) -> KPlanesField:
    """A small K-Planes field over [-1, 1]^3."""
    settings = {"resolutions": (4, 8), "time_resolution": 5, "features": 4, "width": 8}
    return KPlanesField(CONTEXT, **{**settings, **options})


def samples(count: int, time: float) -> RaySamples:
    """One sample per ray at random positions, all at ``time``."""
    ones = torch.ones(count, 1)
    origins = torch.rand(count, 3) - 0.5
    directions = torch.nn.functional.normalize(torch.randn(count, 3), dim=-1)
    rays = RayBundle(origins, directions, ones * 0, ones, ones * 1e-3,
                     torch.zeros(count, dtype=torch.long), times=ones * time)  # fmt: skip
    return RaySamples(rays, ones * 0.0, ones * 0.01, torch.arange(count))


def test_shapes_and_gradients_reach_every_plane_and_decoder() -> None:
    field = kplanes()
    out = field(samples(32, 0.3))
    assert out["density"].shape == (32, 1) and out["rgb"].shape == (32, 3)
    assert field.features(torch.zeros(5, 3), torch.zeros(5, 1)).shape == (5, 8)
    (out["density"].sum() + out["rgb"].sum()).backward()
    for name, param in field.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_planes_and_decoders_get_their_learning_rate_scales() -> None:
    field = kplanes(plane_lr_scale=7.0, decoder_lr_scale=3.0)
    planes = {id(p) for p in (*field.space_planes, *field.time_planes)}
    for name, param in field.named_parameters():
        expected = 7.0 if id(param) in planes else 3.0
        assert parameter_tags(param).lr_scale == expected, name
    with pytest.raises(ValueError, match="decoder_lr_scale"):
        kplanes(decoder_lr_scale=0.0)


def test_features_are_the_product_of_six_plane_lookups() -> None:
    field = kplanes(resolutions=(2,), time_resolution=2, features=1)
    with torch.no_grad():
        for plane in (*field.space_planes, *field.time_planes):
            plane.fill_(2.0)
        field.time_planes[0][0, 0].copy_(torch.tensor([[1.0, 1.0], [3.0, 3.0]]))  # xt: t
    at = torch.zeros(2, 3)
    values = field.features(at, torch.tensor([[0.0], [1.0]]))
    # five planes give 2, the xt plane 1 at t = 0 and 3 at t = 1 (rows are time)
    assert values[:, 0].tolist() == pytest.approx([32.0, 96.0])


def test_starts_static_and_time_changes_it_once_time_planes_move() -> None:
    field = kplanes()
    x = torch.rand(64, 3) * 2 - 1
    assert torch.allclose(field.density(x, torch.zeros(64, 1)), field.density(x, torch.ones(64, 1)))
    with torch.no_grad():
        field.time_planes[0].add_(torch.randn_like(field.time_planes[0]))
    assert not torch.allclose(field.density(x, torch.zeros(64, 1)),
                              field.density(x, torch.ones(64, 1)))  # fmt: skip


def test_plane_tv_against_its_definition() -> None:
    plane = torch.randn(3, 2, 4, 5)
    along_w = sum((plane[..., i, j + 1] - plane[..., i, j]).square().sum()
                  for i in range(4) for j in range(4)) / (3 * 2 * 4 * 4)  # fmt: skip
    along_h = sum((plane[..., i + 1, j] - plane[..., i, j]).square().sum()
                  for i in range(3) for j in range(5)) / (3 * 2 * 3 * 5)  # fmt: skip
    assert float(plane_tv(plane, time_axis=True)) == pytest.approx(float(along_w), rel=1e-5)
    assert float(plane_tv(plane, time_axis=False)) == pytest.approx(float(along_w + along_h),
                                                                  rel=1e-5)  # fmt: skip


def test_time_smoothness_is_the_squared_laplacian_along_time() -> None:
    t = torch.arange(6.0)[None, None, :, None]
    linear = (2.0 * t + 1.0).expand(3, 2, 6, 4).clone()
    assert float(time_smoothness(linear)) == pytest.approx(0.0, abs=1e-10)
    plane = torch.randn(3, 2, 6, 4)
    expected = torch.stack([plane[:, :, k + 1] - 2 * plane[:, :, k] + plane[:, :, k - 1]
                            for k in range(1, 5)]).square().mean()  # fmt: skip
    assert float(time_smoothness(plane)) == pytest.approx(float(expected), rel=1e-5)
    assert float(static_time(torch.ones(3, 2, 6, 4))) == 0.0
    assert float(static_time(torch.full((1, 1, 2, 2), 0.5))) == pytest.approx(0.5)


def brief(repeated: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Dense only for t in [0.5, 0.625): one eighth of the time."""
    return ((times >= 0.5) & (times < 0.625)).float()


def test_max_over_stratified_times_finds_a_brief_occupant() -> None:
    x = torch.zeros(2000, 3)
    assert bool((max_over_time(brief, x, 8) > 0).all())  # one time in each eighth
    assert float((max_over_time(brief, x, 1) > 0).float().mean()) < 0.3


class BriefKPlanes(KPlanesField):
    """A K-Planes field whose density is 1 only for t in [0.5, 0.625)."""

    def decode_density(self, features: torch.Tensor, positions: torch.Tensor):  # noqa: ANN201
        """Density from the time stored in the last feature."""
        return brief(positions, features[:, -1:]), features[:, :0]

    def features(self, positions: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The time as the only feature."""
        return times

    def time_features(self, positions: torch.Tensor, times: torch.Tensor) -> list:
        """The time, per scale."""
        return [times for _ in self.time_planes]

    def space_features(self, positions: torch.Tensor) -> list:
        """Ones, per scale."""
        return [torch.ones(positions.shape[0], 1) for _ in self.space_planes]


@pytest.mark.parametrize("count", [1, 8])
def test_kplanes_occupancy_times_keep_a_cell_dense_at_any_time(count: int) -> None:
    field = BriefKPlanes(CONTEXT, resolutions=(2,), time_resolution=2, occupancy_times=count)
    dense = float((field.density(torch.zeros(2000, 3)) > 0).float().mean())
    assert dense == 1.0 if count == 8 else dense < 0.3


class StillSphere(torch.nn.Module):
    """Density 1 within 0.5 of the origin."""

    def density(self, positions: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """Inside the ball or not."""
        return (positions.norm(dim=-1, keepdim=True) < 0.5).float()


class VisitOnce(torch.nn.Module):
    """Moves every point out of the ball except for t in [0.5, 0.625)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Displacement 5 along x outside the brief window."""
        away = 1.0 - brief(x, t)
        return {"deformation": torch.cat([5.0 * away, 0 * away, 0 * away], -1)}


@pytest.mark.parametrize("count", [1, 8])
def test_deformed_occupancy_times_option(count: int) -> None:
    field = deform(StillSphere(), VisitOnce(), occupancy_times=count)
    assert isinstance(field, DeformedDensityField)
    dense = float((field.density(torch.zeros(2000, 3)) > 0).float().mean())
    assert dense == 1.0 if count == 8 else dense < 0.3
