"""The mip sampler: blurred weights, resampling, one field for both passes."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_mip.sampler import MipSampler, blur_weights, resample_edges
from torch import Tensor

from atlas_core.api import Field, RayBundle, RaySamples


class SlabField(Field):
    """Dense between distances 3 and 3.5 along every ray; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density 50 inside the slab, 0 elsewhere; grey colour."""
        self.calls += 1
        mid = 0.5 * (samples.t_starts + samples.t_ends)
        density = 50.0 * ((mid > 3.0) & (mid < 3.5)).float()
        return {"density": density, "rgb": torch.full((mid.shape[0], 3), 0.5)}


def make_rays(count: int = 4) -> RayBundle:
    """Rays along +x from the origin between distances 2 and 6."""
    ones = torch.ones(count, 1)
    directions = torch.tensor([[1.0, 0.0, 0.0]]).expand(count, 3)
    return RayBundle(torch.zeros(count, 3), directions, 2 * ones, 6 * ones, 1e-3 * ones,
                     torch.zeros(count, dtype=torch.long))  # fmt: skip


def test_blur_is_max_then_average_plus_padding() -> None:
    weights = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    # maxima of neighbours: [0, 1, 1, 0, 0]; averages of those pairs: [.5, 1, .5, 0]
    expected = torch.tensor([[0.5, 1.0, 0.5, 0.0]]) + 0.01
    torch.testing.assert_close(blur_weights(weights, 0.01), expected)


@pytest.mark.parametrize("jitter", [False, True])
def test_resampled_edges_are_sorted_and_follow_the_weights(jitter: bool) -> None:
    edges = torch.linspace(2.0, 6.0, 9).expand(3, 9)
    weights = torch.full((3, 8), 0.01)
    weights[:, 2] = 1.0  # the bin [3, 3.5]
    drawn = resample_edges(edges, weights, 65, jitter)
    assert drawn.shape == (3, 65)
    assert (drawn[:, 1:] >= drawn[:, :-1]).all()
    assert (drawn >= 2.0).all() and (drawn <= 6.0).all()
    inside = ((drawn >= 3.0) & (drawn <= 3.5)).float().mean()
    assert inside > 0.8  # 1 / (1 + 7 * 0.01) of the mass
    if not jitter:
        assert torch.allclose(drawn[:, 0], edges[:, 0]) and torch.allclose(
            drawn[:, -1], edges[:, -1]
        )


def test_sampler_uses_the_run_field_twice_and_returns_the_coarse_image() -> None:
    field, sampler = SlabField(), MipSampler(samples=16).eval()
    rays = make_rays()
    samples, extras = sampler(rays, field)
    assert field.calls == 1  # the coarse pass; the pipeline renders the fine one
    assert samples.t_starts.shape == (4 * 16, 1)
    assert (samples.t_ends >= samples.t_starts).all()
    torch.testing.assert_close(
        samples.t_ends.view(4, 16)[:, :-1], samples.t_starts.view(4, 16)[:, 1:]
    )
    assert extras["coarse_rgb"].shape == (4, 3) and extras["coarse_acc"].shape == (4, 1)
    assert extras["coarse_acc"].min() > 0.99  # the slab is opaque
    mids = 0.5 * (samples.t_starts + samples.t_ends)
    assert ((mids > 2.9) & (mids < 3.6)).float().mean() > 0.5  # the fine pass finds it
    again, _ = sampler(rays, field)
    torch.testing.assert_close(again.t_starts, samples.t_starts)  # eval is deterministic


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="samples"):
        MipSampler(samples=0)
    with pytest.raises(ValueError, match="padding"):
        MipSampler(padding=0.0)
