"""Where the planes are: a reference camera and depths spaced evenly in inverse depth.

Zhou et al. 2018 (stereo magnification, sec. 3) and Mildenhall et al. 2019 (LLFF, sec.
3.1): D fronto-parallel planes at depths whose inverses (disparities) are evenly spaced
between 1/near and 1/far, in the frame of a reference camera; a plane's texture covers
that camera's image (times ``margin``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from atlas_core.api import Views

Reference = Literal["mean", "first"]


def mean_pose(c2w: Tensor) -> Tensor:
    """The average camera [4, 4]: mean position, mean viewing and up axes made orthonormal
    (as LLFF's ``poses_avg``)."""
    back = nn.functional.normalize(c2w[:, :3, 2].mean(dim=0), dim=0)
    right = torch.linalg.cross(c2w[:, :3, 1].mean(dim=0), back)
    if float(right.norm()) < 1e-6:  # mean up along the view (e.g. cameras all round)
        axis = torch.eye(3, dtype=c2w.dtype)[int(back.abs().argmin())]
        right = torch.linalg.cross(axis, back)
    right = nn.functional.normalize(right, dim=0)
    pose = torch.eye(4, dtype=c2w.dtype)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, torch.linalg.cross(back, right), back
    pose[:3, 3] = c2w[:, :3, 3].mean(dim=0)
    return pose


def reference_pose(views: Views, reference: Reference) -> Tensor:
    """The reference camera-to-world matrix: the mean training camera or the first one."""
    c2w = views.c2w.float().cpu()
    return mean_pose(c2w) if reference == "mean" else c2w[0].clone()


class PlaneGeometry(nn.Module):
    """Reference camera (``c2w``, focal, image size), plane depths and the projections."""

    def __init__(self, c2w: Tensor, focal: float, width: int, height: int,
                 near: float, far: float, planes: int, margin: float):  # fmt: skip
        super().__init__()
        self.register_buffer("c2w", c2w.float().clone())
        self.register_buffer("disparities", torch.linspace(1.0 / near, 1.0 / far, planes))
        self.focal, self.width, self.height = float(focal), int(width), int(height)
        self.count, self.margin = planes, float(margin)

    @property
    def depths(self) -> Tensor:
        """Plane depths [D] in front of the reference camera, nearest first."""
        return 1.0 / self.disparities

    def to_camera(self, positions: Tensor) -> Tensor:
        """World points [N, 3] in the reference camera's frame [N, 3] (-Z is forward)."""
        rot, eye = self.c2w[:3, :3], self.c2w[:3, 3]
        return (positions - eye) @ rot

    def project(self, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Texture coordinates [N, 2] in [-1, 1] (grid_sample's, x right, y down),
        continuous plane index [N] and depth [N] of world points."""
        local = self.to_camera(positions)
        depth = -local[:, 2]
        safe = depth.clamp_min(1e-6)
        scale = 2.0 * self.focal / self.margin
        uv = torch.stack(
            [
                scale * local[:, 0] / (safe * self.width),
                -scale * local[:, 1] / (safe * self.height),
            ],
            dim=-1,
        )
        first, last = self.disparities[0], self.disparities[-1]
        index = (1.0 / safe - first) / (last - first) * (self.count - 1)
        return uv, index, depth

    def inside(self, uv: Tensor, index: Tensor, depth: Tensor) -> Tensor:
        """Points [N] in front of the camera, within the planes' texture and depth range."""
        within = (uv.abs() <= 1.0).all(dim=-1) & (index >= -0.5) & (index <= self.count - 0.5)
        return within & (depth > 1e-6)

    def gap(self, depth: Tensor) -> Tensor:
        """Depth distance between neighbouring planes at ``depth`` [N] (d z = z^2 d(1/z))."""
        step = (self.disparities[0] - self.disparities[-1]) / (self.count - 1)
        return depth.clamp_min(1e-6) ** 2 * step

    def intersect(self, origins: Tensor, directions: Tensor) -> Tensor:
        """Ray distances [R, D] to every plane (inf where a ray runs parallel or away)."""
        rot, eye = self.c2w[:3, :3], self.c2w[:3, 3]
        o_z = ((origins - eye) @ rot)[:, 2:]
        d_z = (directions @ rot)[:, 2:]
        t = (-self.depths[None, :] - o_z) / torch.where(d_z.abs() < 1e-9, 1e-9, d_z)
        return torch.where((d_z.abs() < 1e-9) | (t <= 0), torch.inf, t)


def plane_geometry(views: Views, reference: Reference, near: float, far: float,
                   planes: int, margin: float) -> PlaneGeometry:  # fmt: skip
    """The geometry of an MPI in the reference camera of a training split."""
    pose = reference_pose(views, reference)
    return PlaneGeometry(pose, views.focal, views.width, views.height, near, far, planes, margin)
