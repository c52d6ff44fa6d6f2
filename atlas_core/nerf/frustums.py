"""Multisamples of conical frustums, for anti-aliased grid fields (Zip-NeRF).

Barron et al. 2023, "Zip-NeRF: Anti-Aliased Grid-Based Neural Radiance Fields", sec. 2:
each interval of a pixel's cone is represented by a few points spread over its frustum,
each an isotropic Gaussian of standard deviation ``r t / sqrt(2)`` (``r``: the cone's
radius at unit distance, ``t``: the point's distance), scaled by ``STD_SCALE`` = 0.5 as in
the public implementations (the points' spread covers the rest of the footprint). A grid
field averages its features over the points and scales each level's features by how much
of the Gaussian falls in one of that level's cells (``level_weights``), so levels finer
than the footprint fade out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atlas_core.nerf.rays import RaySamples

__all__ = ["frustum_multisamples", "level_weights"]


def perpendicular_basis(directions: Tensor) -> tuple[Tensor, Tensor]:
    """Two unit vectors [N, 3] orthogonal to unit ``directions`` [N, 3] and to each other."""
    helper = torch.zeros_like(directions)
    helper[:, 0] = 1.0
    near_x = directions[:, 0].abs() > 0.9
    helper[near_x] = torch.tensor([0.0, 1.0, 0.0], dtype=directions.dtype, device=helper.device)
    first = torch.linalg.cross(directions, helper)
    first = first / first.norm(dim=-1, keepdim=True)
    return first, torch.linalg.cross(directions, first)


STD_SCALE = 0.5  # the Gaussians' width as a share of r t / sqrt(2) (zipnerf-pytorch's)


def frustum_multisamples(
    samples: RaySamples, count: int, jitter: bool = False, std_scale: float = STD_SCALE
) -> tuple[Tensor, Tensor]:
    """``count`` points [N, count, 3] per sample's frustum and their Gaussians' standard
    deviations [N, count], ``std_scale * r t / sqrt(2)``.

    Along the ray the points sit at the centres of ``count`` equal parts of the interval;
    across it, they turn once around the axis (a spiral, as Zip-NeRF's) at radius
    ``r t / sqrt(2)``, so their spread across the ray is that of the cone's cross-section
    (variance ``(r t)^2 / 4`` per axis) and their mean along it the interval's centre. ``jitter``
    turns each sample's spiral by a random angle (training). One point is the interval's
    centre. Points follow ``samples.positions``, so displaced samples carry their points.
    """
    if count < 1:
        raise ValueError(f"need at least one multisample, got {count}")
    t0, t1 = samples.t_starts, samples.t_ends  # [N, 1]
    directions = samples.directions
    radii = samples.rays.radii[samples.ray_indices]  # [N, 1]
    parts = (torch.arange(count, device=t0.device, dtype=t0.dtype) + 0.5) / count
    t = t0 + (t1 - t0) * parts  # [N, K]
    spread = radii * t / math.sqrt(2.0)
    stds = std_scale * spread
    along = (t - 0.5 * (t0 + t1))[..., None] * directions[:, None]  # [N, K, 3]
    points = samples.positions[:, None] + along
    if count == 1:
        return points, stds
    angles = torch.arange(count, device=t0.device, dtype=t0.dtype) * (2.0 * math.pi / count)
    angles = angles.expand(len(t0), count)
    if jitter:
        angles = angles + 2.0 * math.pi * torch.rand_like(t0)
    first, second = perpendicular_basis(directions)
    ring = angles.cos()[..., None] * first[:, None] + angles.sin()[..., None] * second[:, None]
    return points + spread[..., None] * ring, stds


def level_weights(stds: Tensor, resolutions: Tensor) -> Tensor:
    """Zip-NeRF's level weights, ``erf(1 / sqrt(8 s^2 n^2))`` [..., L] for Gaussians of standard
    deviation ``stds`` [...] in a level of ``n`` cells per unit (``resolutions`` [L]): the
    share of the Gaussian within half a cell of its mean along one axis, 1 for a point."""
    scaled = stds[..., None] * resolutions * math.sqrt(8.0)
    return torch.erf(1.0 / scaled.clamp_min(1e-12))
