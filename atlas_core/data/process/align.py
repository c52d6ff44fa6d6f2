"""Similarity alignment of two point sets, to compare recovered camera centres with
known ones (SfM recovers a scene up to a rotation, translation and scale).

Umeyama, "Least-squares estimation of transformation parameters between two point
patterns", IEEE TPAMI 13(4), 1991: the scale, rotation and translation minimising
``sum |y_i - (s R x_i + t)|^2``, from the SVD of the cross-covariance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["align_error", "similarity"]


def similarity(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale, rotation [3, 3] and translation [3] taking points ``x`` [N, 3] onto ``y``."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    dx, dy = x - mx, y - my
    cov = dy.T @ dx / len(x)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0  # a rotation, not a reflection
    rotation = u @ sign @ vt
    variance = (dx**2).sum() / len(x)
    scale = float(np.trace(np.diag(d) @ sign) / variance) if variance > 0 else 1.0
    return scale, rotation, my - scale * rotation @ mx


def align_error(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distances [N] between ``y`` and ``x`` after the best similarity onto ``y``."""
    scale, rotation, shift = similarity(x, y)
    return np.linalg.norm(y - (scale * x @ rotation.T + shift), axis=1)
