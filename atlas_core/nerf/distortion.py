"""Mip-NeRF 360's distortion loss over packed samples (Barron et al. 2022, eq. 15).

``L = sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 (s_i+1 - s_i)`` per ray, with ``m``
the interval midpoints and ``s`` the ray distance normalised to [0, 1]: it pulls each
ray's weights into one short interval, which removes the floaters and background fog of
unbounded captures (on flower's NDC rays it cost 0.6 dB, so only contracted scenes get it
by default). The double sum is computed in linear time (the paper's appendix):
``2 sum_i w_i (m_i W_<i - (wm)_<i)`` with per-ray exclusive sums.
"""

from __future__ import annotations

from torch import Tensor

from atlas_core.errors import ConfigError
from atlas_core.nerf.compositing import segment_exclusive_cumsum, segment_sum
from atlas_core.nerf.contraction import LINEAR_REACH, distance_to_s
from atlas_core.nerf.losses import Loss
from atlas_core.nerf.rays import RayBundle

__all__ = ["INTERVALS", "RAY_INDICES", "DistortionLoss", "distortion", "normalized_intervals"]

INTERVALS = "sample_intervals"
"""Renderer output: each sample's ``(t_start, t_end)`` [N, 2] along its ray."""
RAY_INDICES = "sample_ray_indices"
"""Renderer output: each sample's ray [N] (sorted, as the samples are packed)."""


def normalized_intervals(rays: RayBundle, intervals: Tensor, ray_indices: Tensor) -> Tensor:
    """Intervals [N, 2] mapped to [0, 1] along each ray: NDC ``t`` as it is, contracted rays
    through Mip-NeRF 360's warp ``s`` (over its range ``2T``), others ``(t - near) / (far -
    near)``."""
    if rays.contracted:
        return distance_to_s(intervals) / (2 * LINEAR_REACH)
    near, far = rays.near[ray_indices], rays.far[ray_indices]
    return (intervals - near) / (far - near).clamp_min(1e-9)


def distortion(weights: Tensor, intervals: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Per-ray distortion [R] of packed weights [N] over normalised intervals [N, 2]."""
    mid = intervals.mean(dim=-1)
    width = intervals[:, 1] - intervals[:, 0]
    before = segment_exclusive_cumsum(weights, ray_indices, num_rays)
    moment = segment_exclusive_cumsum(weights * mid, ray_indices, num_rays)
    inter = 2 * weights * (mid * before - moment)
    intra = weights.square() * width / 3
    return segment_sum((inter + intra)[:, None], ray_indices, num_rays)[:, 0]


class DistortionLoss(Loss):
    """The mean distortion over the batch's rays (needs a renderer that outputs the sample
    intervals, as the core's ``volume`` renderer does)."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean over rays of the distortion of their weights."""
        if INTERVALS not in outputs or "weights" not in outputs:
            raise ConfigError(
                "loss 'distortion' needs per-sample weights and intervals from the renderer "
                "(the core's 'volume' renderer gives them); leave losses.distortion out "
                "of the run's config"
            )
        ray_indices = outputs[RAY_INDICES]
        intervals = normalized_intervals(rays, outputs[INTERVALS], ray_indices)
        return distortion(outputs["weights"], intervals, ray_indices, len(rays)).mean()
