"""Small scenes written by tests, for data layouts the generators do not write."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

__all__ = ["forward_facing_scene"]


def forward_facing_scene(root: Path, count: int = 9, width: int = 24, height: int = 18) -> Path:
    """An LLFF folder: a 3x3 grid of cameras looking down -Z at a colour pattern on z = -3."""
    focal, rows = 20.0, []
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        eye = np.array([0.15 * (i % 3) - 0.15, 0.15 * (i // 3 % 3) - 0.15, 0.0])
        drb = np.stack([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], eye], axis=1)
        hwf = np.array([[height], [width], [focal]])
        rows.append(np.concatenate([np.concatenate([drb, hwf], 1).ravel(), [2.0, 4.0]]))
        cols, lines = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        x = eye[0] + (cols - width / 2) / focal * 3.0  # where each pixel's ray meets z = -3
        y = eye[1] - (lines - height / 2) / focal * 3.0
        image = np.stack([(np.sin(2 * x) + 1) / 2, (np.cos(2 * y) + 1) / 2, 0.5 + 0 * x], -1)
        iio.imwrite(root / "images" / f"img{i:02d}.png", (image * 255).astype(np.uint8))
    np.save(root / "poses_bounds.npy", np.array(rows))
    return root
