"""Mip-NeRF 360's scene contraction and the ray distance warp that matches it.

Barron et al. 2022, "Mip-NeRF 360: Unbounded Anti-Aliased Neural Radiance Fields",
eq. 10: ``contract(x) = x`` for ``|x| <= 1``, else ``(2 - 1/|x|) x / |x|``; the whole
space lands in the ball of radius 2, so a grid over ``[-2, 2]^3`` covers it. The scene is
scaled so the cameras sit inside the unit ball (``atlas_core.data.scene_type``).

Samples along a ray are spaced in ``s = T * c(t / T)`` with ``c`` the scalar
contraction (linear up to ``t = T``, linear in disparity beyond, as Mip-NeRF 360's
``s``-space with its piecewise linear/inverse warp). With ``T = 2`` (a unit-ball
diameter) a step of ``ds`` never moves a sample more than ``ds`` in contracted space
for a camera inside the unit ball: the steps follow the grid cells.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "CONTRACTED_BOUNDS",
    "LINEAR_REACH",
    "contract",
    "distance_to_s",
    "s_to_distance",
    "uncontract",
]

CONTRACTED_BOUNDS = (-2.0, -2.0, -2.0, 2.0, 2.0, 2.0)
"""The box that holds every contracted point."""
LINEAR_REACH = 2.0
"""``T``: ray distances up to this are sampled evenly, beyond it evenly in disparity."""


def contract(x: Tensor) -> Tensor:
    """Mip-NeRF 360 eq. 10 on points [..., 3] (Euclidean norm)."""
    norm = x.norm(dim=-1, keepdim=True)
    safe = norm.clamp_min(1.0)  # equal to norm wherever the outer branch is taken
    return torch.where(norm <= 1.0, x, (2.0 - 1.0 / safe) * (x / safe))


def uncontract(y: Tensor, eps: float = 1e-6) -> Tensor:
    """The inverse of ``contract`` for points [..., 3] with ``|y| < 2`` (nearer 2, clamped)."""
    norm = y.norm(dim=-1, keepdim=True)
    safe = norm.clamp(1.0, 2.0 - eps)
    return torch.where(norm <= 1.0, y, y / safe / (2.0 - safe))


def distance_to_s(t: Tensor, reach: float = LINEAR_REACH) -> Tensor:
    """Warped distance ``s = T c(t / T)``: ``t`` up to ``T``, then ``T (2 - T / t)`` (< 2T)."""
    safe = t.clamp_min(reach)
    return torch.where(t <= reach, t, reach * (2.0 - reach / safe))


def s_to_distance(s: Tensor, reach: float = LINEAR_REACH) -> Tensor:
    """The inverse of ``distance_to_s``; ``s`` at or past ``2T`` is clamped just below it."""
    safe = s.clamp(reach, 2.0 * reach * (1.0 - 1e-7))
    return torch.where(s <= reach, s, reach * reach / (2.0 * reach - safe))
