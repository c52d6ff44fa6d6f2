"""Camera conversions between viser (OpenCV: +Z forward, +Y down) and NeRF Atlas
(OpenGL/Blender: the camera looks down -Z, +Y up, camera-to-world matrices)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from atlas_core.nerf.cameras import quaternion_to_rotation, rotation_to_quaternion

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
