"""Projection matrices P = K [R | t]: RQ decomposition and the core's camera convention.

OpenCV/IDR cameras look along +Z with +X right and +Y down; the core's cameras look
along -Z with +Y up (see ``atlas_core.cameras``), so the camera-to-world matrix flips
the Y and Z axes. Pixel centres: OpenCV puts pixel ``(col, row)`` at ``(col, row)``,
the core at ``(col + 0.5, row + 0.5)``, so a principal point moves by +0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPENCV_TO_NERF = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplied onto an OpenCV camera-to-world matrix: flips camera Y and Z."""

MAX_CONDITION = 1e12
"""Condition number above which a 3x3 matrix counts as not invertible."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: intrinsics ``K`` (K[2, 2] = 1), world-to-camera ``R``, ``t``."""

    K: np.ndarray  # [3, 3] upper triangular, positive diagonal
    R: np.ndarray  # [3, 3] rotation, det +1
    t: np.ndarray  # [3]

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    def projection(self) -> np.ndarray:
        """The 3x4 projection matrix ``K [R | t]``."""
        return self.K @ np.concatenate([self.R, self.t[:, None]], axis=1)


def invertible(matrix: np.ndarray) -> bool:
    """True for a finite square matrix that is numerically invertible."""
    return bool(np.isfinite(matrix).all()) and float(np.linalg.cond(matrix)) < MAX_CONDITION


def rq(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RQ decomposition ``matrix = U Q`` (U upper triangular, Q orthogonal) of a 3x3 matrix.

    QR of the row-reversed transpose, reversed back; the signs are then fixed so that
    U has a non-negative diagonal (Hartley and Zisserman 2004, Multiple View Geometry,
    sec. 6.2.4 and A4.1.1).
    """
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ matrix).T)
    upper = flip @ r.T @ flip
    ortho = flip @ q.T
    signs = np.where(np.diag(upper) < 0, -1.0, 1.0)
    return upper * signs[None, :], signs[:, None] * ortho


def decompose(projection: np.ndarray) -> Camera:
    """K, R, t of a 3x4 projection matrix known up to scale (any sign).

    P and -P project alike, so P is negated when det(P[:, :3]) < 0; then the RQ factors
    with a positive-diagonal K give a proper rotation (det R = +1). K is scaled to
    K[2, 2] = 1 and t = K^-1 P[:, 3] by the same factor. Raises ValueError when
    P[:, :3] is not invertible.
    """
    p = np.asarray(projection, dtype=np.float64)
    if p.shape != (3, 4):
        raise ValueError(f"a projection matrix is 3x4, got shape {p.shape}")
    if not invertible(p[:, :3]):
        raise ValueError("its left 3x3 block is not invertible")
    if np.linalg.det(p[:, :3]) < 0:
        p = -p
    upper, rotation = rq(p[:, :3])
    scale = upper[2, 2]
    intrinsics = upper / scale
    translation = np.linalg.solve(intrinsics, p[:, 3] / scale)
    return Camera(intrinsics, rotation, translation)


def camera_to_world(camera: Camera) -> np.ndarray:
    """The core's (NeRF/Blender) camera-to-world matrix [4, 4] of an OpenCV camera."""
    c2w = np.eye(4)
    c2w[:3, :3] = camera.R.T
    c2w[:3, 3] = camera.centre
    return c2w @ OPENCV_TO_NERF


def core_intrinsics(camera: Camera) -> np.ndarray:
    """``(fx, fy, cx, cy)`` in the core's pixel convention (centres at +0.5)."""
    k = camera.K
    return np.array([k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5])
