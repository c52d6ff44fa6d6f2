"""Compositing over packed samples: per-ray sums, transmittance and weights (Max 1995;
NeRF, Mildenhall et al. 2020, eq. 3)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["render_weights", "segment_exclusive_cumsum", "segment_sum"]


def segment_exclusive_cumsum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Per-ray exclusive cumulative sum of packed ``values`` [N] (sorted by ray)."""
    if values.numel() == 0:
        return values
    counts = torch.bincount(ray_indices, minlength=num_rays)
    if bool((counts == counts[0]).all()):
        dense = values.view(num_rays, -1)
        return (dense.cumsum(dim=1) - dense).reshape(-1)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(values.numel(), device=values.device) - starts[ray_indices]
    dense = values.new_zeros(num_rays, int(counts.max()))
    dense = dense.index_put((ray_indices, slot), values)
    return (dense.cumsum(dim=1) - dense)[ray_indices, slot]


def render_weights(density: Tensor, deltas: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Compositing weights ``w_i = T_i (1 - exp(-sigma_i delta_i))`` [N]."""
    tau = density.reshape(-1) * deltas.reshape(-1)
    transmittance = torch.exp(-segment_exclusive_cumsum(tau, ray_indices, num_rays))
    return transmittance * (1.0 - torch.exp(-tau))


def segment_sum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Sum packed per-sample ``values`` [N, C] into per-ray totals [R, C]."""
    out = values.new_zeros(num_rays, values.shape[-1])
    return out.index_add(0, ray_indices, values)
