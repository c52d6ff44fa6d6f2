"""Coarse-to-fine frustum sampling with one shared field (Barron et al. 2021, Mip-NeRF)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.api import (
    RayBundle,
    RaySamples,
    Sampler,
    invert_cdf,
    render_weights,
    samples_from_bins,
    segment_sum,
    stratified_edges,
)

if TYPE_CHECKING:
    from atlas_core.api import Field


def blur_weights(weights: Tensor, padding: float) -> Tensor:
    """Mip-NeRF eq. 18: a 2-tap max filter, a 2-tap blur, plus ``padding`` [R, B]."""
    padded = torch.cat([weights[:, :1], weights, weights[:, -1:]], dim=1)
    maxed = torch.maximum(padded[:, :-1], padded[:, 1:])
    return 0.5 * (maxed[:, :-1] + maxed[:, 1:]) + padding


def resample_edges(edges: Tensor, weights: Tensor, count: int, jitter: bool) -> Tensor:
    """``count`` sorted distances [R, count] drawn from the histogram ``weights`` [R, B].

    Inverse-transform sampling at stratified (jittered) or evenly spaced quantiles,
    so consecutive distances bound the new intervals.
    """
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)
    cdf = cdf.clamp(max=1.0)
    rows = edges.shape[0]
    if jitter:
        steps = torch.arange(count, device=edges.device, dtype=edges.dtype)
        u = (steps + torch.rand(rows, count, device=edges.device, dtype=edges.dtype)) / count
    else:
        u = torch.linspace(0.0, 1.0, count, device=edges.device, dtype=edges.dtype)
        u = u.expand(rows, count).contiguous()
    return invert_cdf(edges, cdf, u)


class MipSampler(Sampler):
    """Coarse frustums, then ``samples`` frustums re-drawn from the blurred coarse weights.

    Unlike NeRF's hierarchical sampling, the same field renders both passes and the
    fine intervals replace the coarse ones (they must tile the ray to form frustums).
    The coarse image is returned as ``coarse_rgb``/``coarse_acc`` for the colour losses.
    """

    def __init__(self, samples: int = 64, padding: float = 0.01):
        super().__init__()
        if samples < 1:
            raise ValueError("samples must be >= 1")
        if padding <= 0.0:
            raise ValueError("padding must be > 0")
        self.samples, self.padding = samples, padding

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, dict[str, Tensor]]:
        """Coarse pass with the run's field, then resampled fine intervals."""
        num_rays = len(rays)
        edges = stratified_edges(rays, self.samples, self.training)
        coarse = samples_from_bins(rays, edges)
        out = field(coarse)
        weights = render_weights(out["density"], coarse.deltas, coarse.ray_indices, num_rays)
        w = weights[:, None]
        extras = {
            "coarse_rgb": segment_sum(w * out["rgb"], coarse.ray_indices, num_rays),
            "coarse_acc": segment_sum(w, coarse.ray_indices, num_rays),
        }
        blurred = blur_weights(weights.detach().view(num_rays, -1), self.padding)
        fine = resample_edges(edges.detach(), blurred, self.samples + 1, self.training)
        return samples_from_bins(rays, fine), extras
