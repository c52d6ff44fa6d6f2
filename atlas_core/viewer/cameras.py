"""Camera conversions between viser (OpenCV: +Z forward, +Y down) and NeRF Atlas
(OpenGL/Blender: the camera looks down -Z, +Y up, camera-to-world matrices)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "OPENCV_TO_OPENGL",
    "c2w_to_viser",
    "focal_from_vertical_fov",
    "quaternion_to_rotation",
    "rotation_to_quaternion",
    "vertical_fov",
    "viser_to_c2w",
]

# flips the camera's Y and Z axes: OpenCV's camera frame to OpenGL's and back (its own inverse)
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])


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


def viser_to_c2w(wxyz: np.ndarray, position: np.ndarray) -> Tensor:
    """Our camera-to-world matrix [4, 4] (OpenGL) of a viser camera's pose (OpenCV)."""
    c2w = np.eye(4)
    c2w[:3, :3] = quaternion_to_rotation(wxyz) @ OPENCV_TO_OPENGL
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return torch.from_numpy(c2w).float()


def c2w_to_viser(c2w: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A viser pose ``(wxyz, position)`` (OpenCV camera frame) of our camera-to-world matrix."""
    matrix = np.asarray(c2w.detach().cpu() if isinstance(c2w, Tensor) else c2w, dtype=np.float64)
    rotation = matrix[:3, :3] @ OPENCV_TO_OPENGL
    return rotation_to_quaternion(rotation), matrix[:3, 3].copy()


def vertical_fov(focal: float, height: int) -> float:
    """Vertical field of view in radians of a pinhole camera (focal length in pixels)."""
    return 2 * math.atan(0.5 * height / focal)


def focal_from_vertical_fov(fov: float, height: int) -> float:
    """Focal length in pixels that gives vertical field of view ``fov`` (radians) at ``height``."""
    return 0.5 * height / math.tan(0.5 * fov)
