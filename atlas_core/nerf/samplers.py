"""Samplers: turn a RayBundle into packed RaySamples."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import torch
from torch import Tensor, nn

from atlas_core.nerf.compositing import render_weights, segment_sum
from atlas_core.nerf.contraction import distance_to_s, s_to_distance
from atlas_core.nerf.rays import RayBundle, RaySamples, samples_from_bins

if TYPE_CHECKING:
    from atlas_core.build import BuildContext
    from atlas_core.nerf.fields import Field

__all__ = [
    "COARSE_ACC",
    "COARSE_RGB",
    "HierarchicalSampler",
    "Sampler",
    "SamplerExtras",
    "StratifiedSampler",
    "invert_cdf",
    "sample_pdf",
    "stratified_edges",
]


COARSE_RGB = "coarse_rgb"
"""Extras key of a coarse pass's image [R, 3] (before the background is added)."""
COARSE_ACC = "coarse_acc"
"""Extras key of a coarse pass's accumulated opacity [R, 1]."""


class SamplerExtras(TypedDict, total=False):
    """Per-ray tensors a sampler may return beside its samples; the pipeline adds them to
    the render outputs. A coarse image is composited over the run's background, and colour
    losses add its error weighted by ``train.coarse_weight`` (NeRF sec. 5.2)."""

    coarse_rgb: Tensor  # [R, 3]
    coarse_acc: Tensor  # [R, 1]


class Sampler(nn.Module):
    """Base class: ``forward(rays, field) -> (samples, extras)``.

    ``extras`` (``SamplerExtras``) holds per-ray tensors the sampler produced on the way
    (the coarse image of hierarchical sampling); the pipeline adds them to the outputs.
    """

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, SamplerExtras]:
        """Sample intervals along ``rays``."""
        raise NotImplementedError


def stratified_edges(rays: RayBundle, count: int, jitter: bool) -> Tensor:
    """Bin edges [R, count+1] between near and far; each edge jittered between the
    centres of its neighbouring bins while training (as in nerfstudio). Contracted rays
    are binned evenly in the warped distance ``s`` (linear near, disparity far; Mip-NeRF
    360), so rays out to a far distance keep their samples near the content."""
    u = torch.linspace(0.0, 1.0, count + 1, device=rays.origins.device)
    u = u.expand(len(rays), count + 1)
    if jitter:
        centres = 0.5 * (u[:, 1:] + u[:, :-1])
        upper = torch.cat([centres, u[:, -1:]], dim=1)
        lower = torch.cat([u[:, :1], centres], dim=1)
        u = lower + (upper - lower) * torch.rand_like(u)
    if rays.contracted:
        near, far = distance_to_s(rays.near), distance_to_s(rays.far)
        return s_to_distance(near + (far - near) * u)
    return rays.near + (rays.far - rays.near) * u


class StratifiedSampler(Sampler):
    """``samples`` intervals per ray with per-ray jitter while training (NeRF eq. 2)."""

    def __init__(self, samples: int = 64):
        super().__init__()
        if samples < 1:
            raise ValueError("samples must be >= 1")
        self.samples = samples

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, dict[str, Tensor]]:
        """Jittered bins between each ray's near and far."""
        edges = stratified_edges(rays, self.samples, self.training)
        return samples_from_bins(rays, edges), {}


def sample_pdf(edges: Tensor, weights: Tensor, count: int, jitter: bool) -> Tensor:
    """Inverse-transform sampling of ``count`` distances per ray from binned weights.

    ``edges`` [R, B+1], ``weights`` [R, B]; returns sorted samples [R, count]
    (NeRF, Mildenhall et al. 2020, sec. 5.2).
    """
    weights = weights + 1e-5
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cumsum(pdf, dim=-1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], dim=-1).clamp(max=1.0)
    shape = (edges.shape[0], count)
    if jitter:
        u = torch.rand(shape, device=edges.device)
    else:
        u = torch.linspace(0.0, 1.0, count, device=edges.device).expand(shape)
    return invert_cdf(edges, cdf, u.contiguous())


def invert_cdf(edges: Tensor, cdf: Tensor, u: Tensor) -> Tensor:
    """Distances [R, K] at quantiles ``u`` [R, K] of the piecewise-linear ``cdf`` [R, B+1]
    over bin ``edges`` [R, B+1]."""
    upper = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[-1] - 1)
    lower = upper - 1
    cdf_lo, cdf_hi = cdf.gather(1, lower), cdf.gather(1, upper)
    edge_lo, edge_hi = edges.gather(1, lower), edges.gather(1, upper)
    frac = ((u - cdf_lo) / (cdf_hi - cdf_lo).clamp_min(1e-8)).clamp(0.0, 1.0)
    return edge_lo + frac * (edge_hi - edge_lo)


class HierarchicalSampler(Sampler):
    """NeRF's coarse-to-fine sampling with its own coarse field (NeRF sec. 5.2).

    ``coarse`` stratified intervals are rendered with the coarse field; ``fine`` more
    distances are drawn from the coarse weights and merged with the coarse edges, so
    the main field sees ``coarse + fine`` intervals. The coarse image is returned as
    ``coarse_rgb``/``coarse_acc`` for the losses, as in the paper.
    """

    def __init__(self, context: BuildContext, coarse: int = 64, fine: int = 128):
        super().__init__()
        if coarse < 1 or fine < 0:
            raise ValueError("coarse must be >= 1 and fine >= 0")
        self.coarse, self.fine = coarse, fine
        self.coarse_field = context.make_field()

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, dict[str, Tensor]]:
        """Coarse pass, then importance-sampled fine intervals."""
        edges = stratified_edges(rays, self.coarse, self.training)
        coarse = samples_from_bins(rays, edges)
        out = self.coarse_field(coarse)
        num_rays = len(rays)
        weights = render_weights(out["density"], coarse.deltas, coarse.ray_indices, num_rays)
        w = weights[:, None]
        extras: SamplerExtras = {
            COARSE_RGB: segment_sum(w * out["rgb"], coarse.ray_indices, num_rays),
            COARSE_ACC: segment_sum(w, coarse.ray_indices, num_rays),
        }
        fine = sample_pdf(edges, weights.detach().view(num_rays, -1), self.fine, self.training)
        merged, _ = torch.sort(torch.cat([edges, fine.detach()], dim=-1), dim=-1)
        return samples_from_bins(rays, merged), extras
