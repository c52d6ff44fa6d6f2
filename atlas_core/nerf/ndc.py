"""Normalised device coordinates for forward-facing scenes (NeRF, Mildenhall et al. 2020,
appendix C).

World: the reference camera at the origin looking down -Z (the LLFF loader's recentred
frame), near plane ``z = -n``. A point maps to
``(-f/(W/2) x/z, -f/(H/2) y/z, 1 + 2n/z)``: the reference camera's frustum from the
near plane to infinity becomes ``[-1, 1]^3``. A ray is first moved to start on the near
plane; its image is the straight ray ``o' + t' d'`` with ``t'`` 0 on the near plane and 1
at infinity (appendix C, eqs. 25 and 26).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["NDCFrame", "ndc_point", "ndc_rays", "ndc_t"]

MIN_FORWARD = 1e-6  # rays must head into -Z; flatter or backward rays are tilted to this


@dataclass(frozen=True)
class NDCFrame:
    """The reference pinhole camera that defines NDC: focal (pixels), image size, near."""

    focal: float
    width: int
    height: int
    near: float = 1.0


def ndc_point(points: Tensor, frame: NDCFrame) -> Tensor:
    """Project world points [..., 3] (with ``z < 0``) into NDC (appendix C, eq. 23)."""
    x, y, z = points.unbind(-1)
    return torch.stack(
        [
            -frame.focal / (frame.width / 2) * x / z,
            -frame.focal / (frame.height / 2) * y / z,
            1.0 + 2.0 * frame.near / z,
        ],
        dim=-1,
    )


def ndc_rays(origins: Tensor, directions: Tensor, frame: NDCFrame) -> tuple[Tensor, Tensor]:
    """NDC origins and directions [R, 3] of world rays (appendix C, eqs. 25 and 26)."""
    dz = directions[..., 2].clamp(max=-MIN_FORWARD)
    directions = torch.cat([directions[..., :2], dz[..., None]], dim=-1)
    to_plane = -(frame.near + origins[..., 2]) / dz  # move the origin onto z = -near
    origins = origins + to_plane[..., None] * directions
    ox, oy, oz = origins.unbind(-1)
    dx, dy = directions[..., 0], directions[..., 1]
    ax = -frame.focal / (frame.width / 2)
    ay = -frame.focal / (frame.height / 2)
    new_origins = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * frame.near / oz], dim=-1)
    new_dirs = torch.stack(
        [ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * frame.near / oz], dim=-1
    )
    return new_origins, new_dirs


def ndc_t(origins: Tensor, directions: Tensor, t: Tensor, frame: NDCFrame) -> Tensor:
    """NDC ``t'`` of the world point ``o + t d`` on rays already starting on the near plane:
    ``1 - o_z / (o_z + t d_z)``."""
    oz, dz = origins[..., 2], directions[..., 2]
    return 1.0 - oz / (oz + t * dz)
