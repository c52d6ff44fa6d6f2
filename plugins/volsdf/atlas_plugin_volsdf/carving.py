"""Carving a warm-up density's solid with the training rays' depths.

A per-voxel opacity threshold misplaces surfaces: a faint haze over a surface crosses it
(the solid grows outwards) and dark texture falls under it (pits). What the images pin
down is where each ray's transmittance falls to one half, its median depth. So the
solid is trimmed as in space carving (Kutulakos and Seitz 2000, "A Theory of Shape by
Space Carving"), with rendered depths in place of photo-consistency: a vertex is empty
when enough training views see it in front of their median depth (a depth map at a
pixel stride, interpolated where smooth, the nearest sample at edges).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from atlas_core.api import SceneData, Views, make_rays, project

__all__ = ["DepthMap", "carve", "depth_maps", "median_depths"]

LOG_HALF = math.log(2.0)
QUORUM = 0.25  # of the observing views (grazing views may not see through a haze)
RAYS = 600_000  # the automatic stride's ray budget: about 8 s on two CPU cores
TOLERANCE = 0.04  # neighbouring depths this close (relative) are one surface: interpolate


@torch.no_grad()
def median_depths(
    density: Callable[[Tensor], Tensor],
    origins: Tensor,
    directions: Tensor,
    near: Tensor,
    far: Tensor,
    step: float,
    chunk: int = 4096,
) -> Tensor:
    """Distance [R] along unit-direction rays to where the transmittance through
    ``density`` falls to one half (inf where it never does before ``far``).

    Density is piecewise constant over segments of ``step``; the crossing is found
    within its segment from the optical depth (NeRF's quadrature).
    """
    depths = []
    for start in range(0, len(origins), chunk):
        o, d = origins[start : start + chunk], directions[start : start + chunk]
        lo, hi = near[start : start + chunk, 0], far[start : start + chunk, 0]
        count = max(int(math.ceil(float((hi - lo).max().clamp_min(0)) / step)), 1)
        edges = lo[:, None] + step * torch.arange(count + 1, device=o.device)
        mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
        valid = mids < hi[:, None]
        points = o[:, None] + d[:, None] * mids[..., None]
        sigma = density(points.reshape(-1, 3)).reshape(mids.shape) * valid
        tau = torch.cumsum(sigma * step, dim=-1)
        crossed = tau >= LOG_HALF
        first = crossed.float().argmax(dim=-1)
        before = torch.where(
            first > 0, tau.gather(-1, (first - 1).clamp_min(0)[:, None])[:, 0], 0.0
        )
        inside = tau.gather(-1, first[:, None])[:, 0] - before
        fraction = ((LOG_HALF - before) / inside.clamp_min(1e-12)).clamp(0.0, 1.0)
        depth = edges.gather(-1, first[:, None])[:, 0] + step * fraction
        depths.append(torch.where(crossed.any(dim=-1), depth, torch.inf))
    return torch.cat(depths) if depths else origins.new_zeros(0)


class DepthMap:
    """One view's median depths on a pixel lattice of ``stride`` and its pinhole camera.

    Depths between lattice points are bilinear where the four neighbours agree within
    ``tolerance`` of their depth (a plate seen at a grazing angle) and the nearest of
    them elsewhere (at occlusion edges nothing behind the edge is carved).
    """

    def __init__(self, views: Views, index: int, stride: int, depths: Tensor, tolerance: float):
        self.stride, self.tolerance = stride, tolerance
        self.rows, self.cols = depths.shape
        self.depths = depths.double().cpu().numpy()
        self.c2w = views.c2w[index].double().cpu().numpy()
        self.intrinsics = views.intrinsics(index)

    def in_front(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Boolean [P]: points this view sees in front of its surface, deepened by
        ``margin``."""
        u, v, z = project(points, self.c2w, self.intrinsics)
        ahead = z > 1e-9
        offset = 0.5 + self.stride // 2  # the lattice's first pixel centre
        fu, fv = (u - offset) / self.stride, (v - offset) / self.stride
        framed = ahead & (fu > -0.5) & (fu < self.cols - 0.5) & (fv > -0.5) & (fv < self.rows - 0.5)
        fu, fv = np.where(framed, fu, 0.0), np.where(framed, fv, 0.0)  # no inf to cast
        row, col = np.floor(fv).astype(np.int64), np.floor(fu).astype(np.int64)
        wv, wu = fv - row, fu - col
        corners, weights = [], []
        for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
            r = np.clip(row + dr, 0, self.rows - 1)
            c = np.clip(col + dc, 0, self.cols - 1)
            corners.append(self.depths[r, c])
            weights.append((wv if dr else 1 - wv) * (wu if dc else 1 - wu))
        corners = np.stack(corners)
        nearest, farthest = corners.min(axis=0), corners.max(axis=0)
        with np.errstate(invalid="ignore"):
            smooth = (farthest - nearest) <= self.tolerance * nearest
            blended = np.where(smooth, (np.stack(weights) * corners).sum(axis=0), nearest)
        surface = np.where(np.isfinite(farthest), blended, nearest)
        distance = np.linalg.norm(points - self.c2w[:3, 3], axis=-1)
        return framed & (distance < surface + margin)


@torch.no_grad()
def depth_maps(
    density: Callable[[Tensor], Tensor],
    views: Views,
    scene: SceneData,
    step: float,
    stride: int,
    device: torch.device,
    tolerance: float = TOLERANCE,
) -> list[DepthMap]:
    """Median-depth maps of every view on a lattice of every ``stride``-th pixel (0: a stride
    that keeps to about ``RAYS`` rays in all), interpolated within ``tolerance``."""
    if stride == 0:
        pixels = len(views) * views.height * views.width
        stride = max(1, math.ceil(math.sqrt(pixels / RAYS)))
    rows = torch.arange(stride // 2, views.height, stride)
    cols = torch.arange(stride // 2, views.width, stride)
    grid_rows, grid_cols = torch.meshgrid(rows, cols, indexing="ij")
    maps = []
    for index in range(len(views)):
        indices = torch.full((grid_rows.numel(),), index, dtype=torch.long)
        rays = make_rays(views, indices, grid_rows.reshape(-1), grid_cols.reshape(-1), scene, False)
        depths = median_depths(
            density,
            rays.origins.to(device),
            rays.directions.to(device),
            rays.near.to(device),
            rays.far.to(device),
            step,
        )
        maps.append(DepthMap(views, index, stride, depths.reshape(grid_rows.shape), tolerance))
    return maps


def carve(
    solid: np.ndarray, points: np.ndarray, maps: list[DepthMap], views: int, margin: float
) -> np.ndarray:
    """``solid`` (boolean, any shape) without the vertices at ``points`` [solid.size, 3]
    that at least ``views`` depth maps, and at least a ``QUORUM`` of those that observe
    them (see them in front of their surface deepened by ``margin``), see in front of
    their surface: with many views, a few noisy depths do not carve the true surface."""
    index = np.flatnonzero(solid)
    votes = np.zeros(len(index), dtype=np.int64)
    observers = np.zeros(len(index), dtype=np.int64)
    for depth_map in maps:
        votes += depth_map.in_front(points[index])
        observers += depth_map.in_front(points[index], margin)
    carved = solid.copy().reshape(-1)
    carved[index[(votes >= views) & (votes >= QUORUM * observers)]] = False
    return carved.reshape(solid.shape)
