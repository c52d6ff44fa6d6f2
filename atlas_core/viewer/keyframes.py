"""Keyframes recorded in the viewer, saved as nerfstudio's camera_path.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from atlas_core.commands.camera_paths import CameraPath, interpolate, write_camera_path
from atlas_core.viewer.cameras import focal_from_vertical_fov

__all__ = ["Keyframes"]


class Keyframes:
    """Camera poses (our c2w) and vertical fields of view, in the order recorded."""

    def __init__(self, width: int, height: int, fps: float, seconds: float = 2.0):
        self.width, self.height, self.fps = width, height, fps
        self.seconds = seconds  # from one keyframe to the next
        self.poses: list[Tensor] = []
        self.fovs: list[float] = []

    def __len__(self) -> int:
        return len(self.poses)

    def record(self, c2w: Tensor, fov: float) -> int:
        """Add a keyframe (``fov``: vertical, radians); returns how many there are."""
        self.poses.append(c2w.detach().cpu().float().clone())
        self.fovs.append(float(fov))
        return len(self.poses)

    def clear(self) -> None:
        """Forget every keyframe."""
        self.poses.clear()
        self.fovs.clear()

    def camera_path(self) -> CameraPath:
        """A smooth path through the keyframes (``seconds`` apart) at the run's image size."""
        count = len(self.poses)
        frames = 1 + round((count - 1) * self.seconds * self.fps) if count > 1 else 1
        poses = interpolate(torch.stack(self.poses), frames)
        at = np.linspace(0, count - 1, frames)  # keyframe i at frame i * (frames-1)/(count-1)
        fovs = np.interp(at, np.arange(count), np.asarray(self.fovs))
        focals = [focal_from_vertical_fov(float(fov), self.height) for fov in fovs]
        return CameraPath(poses, focals, self.width, self.height, self.fps)

    def save(self, path: Path) -> Path:
        """Write ``path`` (camera_path.json) for ``atlas render RUN --path FILE``."""
        if not self.poses:
            raise ValueError("no keyframes recorded")
        return write_camera_path(Path(path), self.camera_path())
