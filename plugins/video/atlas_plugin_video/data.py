"""The ``video`` data kind: one video from a static camera; time from the frame index.

Frames are read with imageio's ffmpeg plugin, every ``stride``-th up to ``limit``; each
selected frame becomes a view with the same camera and a time ``index / last_index``
in [0, 1] (``Views.times``), so dynamic plugins such as dnerf can train on it. Every
``holdout``-th selected frame (the middle one of each group) is kept for the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from atlas_core.api import DataError, SceneData, Views, downscale_rgba
from atlas_plugin_video.camera import camera_focal, camera_pose
from atlas_plugin_video.reader import read_frames


def check_options(path: Path, downscale: int, stride: int, limit: int, holdout: int) -> None:
    """Integer options in range, or a DataError naming the option."""
    if downscale < 1:
        raise DataError(f"{path}: data.downscale must be >= 1, got {downscale}")
    if stride < 1:
        raise DataError(f"{path}: data.stride must be >= 1, got {stride}")
    if limit < 0:
        raise DataError(f"{path}: data.limit must be >= 0 (0 = all frames), got {limit}")
    if holdout < 0 or holdout == 1:
        raise DataError(f"{path}: data.holdout must be 0 (no test split) or >= 2, got {holdout}")


def is_test(position: int, holdout: int) -> bool:
    """True for the frame at ``position`` in the selection that goes to the test split."""
    return holdout > 0 and position % holdout == holdout // 2


def load_video(
    path: str | Path,
    downscale: int = 1,
    stride: int = 1,
    limit: int = 0,
    holdout: int = 8,
    camera: list[float] | None = None,
    distance: float = 4.0,
    fov: float = 50.0,
    focal: float = 0.0,
    near: float = 2.0,
    far: float = 6.0,
    bound: float = 1.5,
) -> SceneData:
    """Load a video as train/test views of one static camera, with per-frame times."""
    path = Path(path)
    check_options(path, downscale, stride, limit, holdout)
    if not 0 < near < far:
        raise DataError(f"{path}: need 0 < near < far, got near={near}, far={far}")
    if not bound > 0:
        raise DataError(f"{path}: bound must be > 0, got {bound}")
    pose = camera_pose(path, camera, distance)
    frames, indices = read_frames(path, stride, limit)
    height, width = frames[0].shape[:2]
    if downscale > min(height, width):
        raise DataError(f"{path}: downscale {downscale} is larger than the {width}x{height} video")
    pixels = camera_focal(path, width, fov, focal)
    rgb = torch.from_numpy(np.stack(frames))
    alpha = torch.full((*rgb.shape[:3], 1), 255, dtype=torch.uint8)
    images = downscale_rgba(torch.cat([rgb, alpha], dim=-1), downscale)
    scale = images.shape[2] / width
    times = torch.tensor(indices, dtype=torch.float32) / max(indices[-1], 1)
    names = [f"frame_{i:05d}" for i in indices]
    chosen = {"train": [], "test": []}
    for position in range(len(indices)):
        chosen["test" if is_test(position, holdout) else "train"].append(position)
    splits = {}
    for split, keep in chosen.items():
        if keep:
            select = torch.tensor(keep)
            splits[split] = Views(images=images[select].contiguous(),
                                  c2w=pose.expand(len(keep), 4, 4).clone(),
                                  focal=pixels * scale, times=times[select],
                                  names=[names[k] for k in keep])  # fmt: skip
    b = float(bound)
    return SceneData(splits, near=near, far=far, bounds=(-b, -b, -b, b, b, b), name=path.stem)
