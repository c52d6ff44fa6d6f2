"""Camera paths around a scene and video writing (mp4 through ffmpeg, or GIF)."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from torch import Tensor

from atlas_core.cameras import look_at

PATHS = ("turntable", "spiral")


def orbit(c2w: Tensor, frames: int, path: str = "turntable") -> Tensor:
    """Camera-to-world matrices [F, 4, 4] circling the origin at the cameras' mean
    radius and elevation; ``spiral`` also swings the elevation up and down."""
    eyes = c2w[:, :3, 3].double()
    radius = float(eyes.norm(dim=-1).mean())
    elevation = float(torch.asin((eyes[:, 2] / eyes.norm(dim=-1)).clamp(-1, 1)).mean())
    poses = []
    for i in range(frames):
        azimuth = 2 * math.pi * i / max(frames, 1)
        elev = elevation
        if path == "spiral":
            elev = elevation + math.radians(15) * math.sin(2 * azimuth)
            elev = max(min(elev, math.radians(85)), math.radians(-85))
        eye = torch.tensor(
            [
                radius * math.cos(elev) * math.cos(azimuth),
                radius * math.cos(elev) * math.sin(azimuth),
                radius * math.sin(elev),
            ],
            dtype=torch.float64,
        )
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        poses.append(look_at(eye, torch.zeros(3, dtype=torch.float64), up))
    return torch.stack(poses).float()


def to_uint8(image: Tensor) -> np.ndarray:
    """[H, W, C] float in [0, 1] to uint8."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Write frames as mp4 (H.264, sizes padded to even) or GIF by the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        imageio.mimwrite(path, frames, duration=1000 / fps, loop=0)
        return path
    padded = []
    for frame in frames:
        h, w = frame.shape[:2]
        padded.append(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    imageio.mimwrite(path, padded, fps=fps, macro_block_size=1, codec="libx264", quality=8)
    return path
