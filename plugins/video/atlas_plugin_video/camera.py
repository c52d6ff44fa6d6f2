"""The video's one static camera: a pose and a focal length, given or assumed.

A single static camera cannot be calibrated from its own frames (there is no parallax
between views of one viewpoint), so "estimated" here means assumed: without ``camera``
the camera sits at ``(0, 0, distance)`` looking at the origin along -Z with +Y up (the
NeRF/Blender convention), and without ``focal`` the focal length follows from an
assumed horizontal field of view ``fov``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from atlas_core.api import DataError, focal_from_fov


def camera_pose(path: Path, camera: list[float] | None, distance: float) -> Tensor:
    """Camera-to-world [4, 4]: ``camera`` (12 or 16 numbers, row-major) or the default."""
    if camera is None or len(camera) == 0:
        if not distance > 0:
            raise DataError(f"{path}: data.distance must be > 0, got {distance}")
        pose = torch.eye(4)
        pose[2, 3] = distance
        return pose
    if len(camera) not in (12, 16):
        raise DataError(
            f"{path}: data.camera needs 12 or 16 numbers (a row-major 3x4 or 4x4 "
            f"camera-to-world matrix), got {len(camera)}"
        )
    pose = torch.eye(4, dtype=torch.float64)
    pose[: len(camera) // 4] = torch.tensor(camera, dtype=torch.float64).view(-1, 4)
    if not bool(torch.isfinite(pose).all()):
        raise DataError(f"{path}: data.camera has NaN or Inf")
    if len(camera) == 16 and not torch.equal(pose[3], torch.tensor([0.0, 0.0, 0.0, 1.0]).double()):
        raise DataError(f"{path}: data.camera's last row must be 0 0 0 1")
    if not abs(float(torch.linalg.det(pose[:3, :3]))) > 1e-9:
        raise DataError(f"{path}: data.camera is degenerate (its 3x3 rotation part is singular)")
    return pose.float()


def camera_focal(path: Path, width: int, fov: float, focal: float) -> float:
    """Focal length in pixels at the video's own width: ``focal``, or from ``fov`` degrees."""
    if focal < 0:
        raise DataError(f"{path}: data.focal must be > 0 (or 0 to use data.fov), got {focal}")
    if focal > 0:
        return focal
    if not 0 < fov < 180:
        raise DataError(f"{path}: data.fov must be in (0, 180) degrees, got {fov}")
    return focal_from_fov(width, math.radians(fov))
