"""Compositing over packed samples: per-ray sums, transmittance and weights (Max 1995;
NeRF, Mildenhall et al. 2020, eq. 3)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["optical_depth", "render_weights", "segment_exclusive_cumsum", "segment_sum"]


def _shifted_cumsum(dense: Tensor) -> Tensor:
    """Exclusive cumulative sum along dim 1 of [R, S]: a zero, then the running sums.

    Not ``cumsum(x) - x``: that cancels catastrophically in float32 once one value
    dwarfs the sum before it (and gives ``inf - inf = nan`` at an infinite one).
    """
    zeros = dense.new_zeros(dense.shape[0], 1)
    return torch.cat([zeros, dense[:, :-1].cumsum(dim=1)], dim=1)


def segment_exclusive_cumsum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Per-ray exclusive cumulative sum of packed ``values`` [N] (sorted by ray)."""
    if values.numel() == 0:
        return values
    counts = torch.bincount(ray_indices, minlength=num_rays)
    if bool((counts == counts[0]).all()):
        return _shifted_cumsum(values.view(num_rays, -1)).reshape(-1)
    starts = torch.cumsum(counts, 0) - counts  # integer offsets: exact
    slot = torch.arange(values.numel(), device=values.device) - starts[ray_indices]
    dense = values.new_zeros(num_rays, int(counts.max()))
    dense = dense.index_put((ray_indices, slot), values)  # padding trails each ray's samples
    return _shifted_cumsum(dense)[ray_indices, slot]


def optical_depth(density: Tensor, deltas: Tensor) -> Tensor:
    """``tau_i = sigma_i delta_i`` [N], with ``0 * inf = 0`` (no sample, or no density).

    An infinite density over a positive length is an opaque sample (``tau = inf``).
    """
    density, deltas = density.reshape(-1), deltas.reshape(-1)
    empty = (density == 0) | (deltas == 0)
    # masking both factors keeps the gradient free of 0 * inf as well
    return torch.where(empty, 0.0, density) * torch.where(empty, 0.0, deltas)


def render_weights(density: Tensor, deltas: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Compositing weights ``w_i = T_i (1 - exp(-sigma_i delta_i))`` [N] (NeRF, eq. 3).

    ``T_i = exp(-sum_{j<i} sigma_j delta_j)``; the opacity ``-expm1(-tau)`` keeps its
    relative precision at small ``tau``, where ``1 - exp(-tau)`` rounds to a few ulps.
    """
    tau = optical_depth(density, deltas)
    transmittance = torch.exp(-segment_exclusive_cumsum(tau, ray_indices, num_rays))
    return transmittance * -torch.expm1(-tau)


def segment_sum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Sum packed per-sample ``values`` [N, C] into per-ray totals [R, C]."""
    out = values.new_zeros(num_rays, values.shape[-1])
    return out.index_add(0, ray_indices, values)
