"""Pinhole cameras in the NeRF/Blender convention.

Camera space: the camera looks along -Z, +X is right and +Y is up. A camera-to-world
matrix ``c2w`` (4x4) maps camera space to world space. Pixel ``(col, row)`` has its
centre at ``(col + 0.5, row + 0.5)``; row 0 is the top of the image.

Intrinsics: by default one ``focal`` (fx = fy) and the principal point at the image
centre. A data kind whose cameras differ (DTU) puts ``[N, 4]`` per-view intrinsics
``(fx, fy, cx, cy)`` in pixels, in this pixel convention (an OpenCV principal point
``c`` is ``c + 0.5`` here), in ``Views.extras[INTRINSICS]``; rays then use them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "INTRINSICS",
    "camera_directions",
    "focal_from_fov",
    "intrinsic_directions",
    "look_at",
    "pixel_rays",
    "project",
    "quaternion_to_rotation",
    "rotation_to_quaternion",
]

INTRINSICS = "intrinsics"
"""Key of per-view intrinsics ``(fx, fy, cx, cy)`` [N, 4] in ``Views.extras``."""


def focal_from_fov(width: int, camera_angle_x: float) -> float:
    """Focal length in pixels from the horizontal field of view in radians."""
    return 0.5 * width / math.tan(0.5 * camera_angle_x)


def camera_directions(
    cols: torch.Tensor, rows: torch.Tensor, focal: float, width: int, height: int
) -> torch.Tensor:
    """Unnormalised camera-space directions [..., 3] through pixel centres."""
    x = (cols.float() + 0.5 - 0.5 * width) / focal
    y = -(rows.float() + 0.5 - 0.5 * height) / focal
    return torch.stack([x, y, -torch.ones_like(x)], dim=-1)


def intrinsic_directions(
    cols: torch.Tensor, rows: torch.Tensor, intrinsics: torch.Tensor
) -> torch.Tensor:
    """Unnormalised camera-space directions [..., 3] for per-ray ``(fx, fy, cx, cy)`` [..., 4]."""
    fx, fy, cx, cy = intrinsics.unbind(-1)
    x = (cols.float() + 0.5 - cx) / fx
    y = -(rows.float() + 0.5 - cy) / fy
    return torch.stack([x, y, -torch.ones_like(x)], dim=-1)


def pixel_rays(
    c2w: torch.Tensor,
    cols: torch.Tensor,
    rows: torch.Tensor,
    focal: float,
    width: int,
    height: int,
    intrinsics: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World-space origins, unit directions and pixel radii for pixels of cameras ``c2w``.

    ``c2w`` is [..., 4, 4] broadcastable against ``cols``/``rows``. The radius is that of
    a disc with the pixel's area at unit distance, as in Mip-NeRF (Barron et al. 2021).
    ``intrinsics`` [..., 4] ``(fx, fy, cx, cy)``, when given, replace ``focal`` and the
    centred principal point (the radius then uses ``sqrt(fx * fy)``).
    """
    if intrinsics is None:
        dirs_cam = camera_directions(cols, rows, focal, width, height)
    else:
        dirs_cam = intrinsic_directions(cols, rows, intrinsics)
        focal = (intrinsics[..., 0:1] * intrinsics[..., 1:2]).sqrt()
    rot = c2w[..., :3, :3]
    dirs = (rot @ dirs_cam.unsqueeze(-1)).squeeze(-1)
    norm = dirs.norm(dim=-1, keepdim=True)
    origins = c2w[..., :3, 3].expand_as(dirs)
    radius = (2.0 / math.sqrt(12.0) / focal) / norm
    return origins, dirs / norm, radius


def project(
    points: np.ndarray, c2w: np.ndarray, intrinsics: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous pixel coordinates (u right, v down; pixel centres at +0.5) and depth along
    the viewing axis of ``points`` [P, 3] for a camera looking along its -Z with
    ``intrinsics`` ``(fx, fy, cx, cy)`` (inf pixel coordinates behind the camera)."""
    fx, fy, cx, cy = intrinsics
    local = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -local[:, 2]
    safe = np.where(depth > 1e-9, depth, np.inf)
    return fx * local[:, 0] / safe + cx, -fy * local[:, 1] / safe + cy, depth


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrix [4, 4] for a camera at ``eye`` looking at ``target``."""
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    true_up = torch.linalg.cross(back, right)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, back, eye
    return c2w


def quaternion_to_rotation(wxyz: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (w, x, y, z); normalised first."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a 3x3 rotation (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2 * math.sqrt(trace + 1)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diagonal(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * math.sqrt(max(1 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    quat = np.array(q) / np.linalg.norm(q)
    return -quat if quat[0] < 0 else quat
