"""Frames of one video file through imageio's ffmpeg plugin (imageio-ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import DataError, first_line


def read_frames(path: Path, stride: int = 1, limit: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """Every ``stride``-th frame (at most ``limit`` of them, 0 = all) as uint8 RGB [H, W, 3],
    and their indices in the video; a missing, unreadable or empty video is a DataError."""
    if not path.exists():
        raise DataError(f"{path}: video file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: is a folder, not a video file")
    frames: list[np.ndarray] = []
    indices: list[int] = []
    try:
        for index, frame in enumerate(iio.imiter(path, plugin="FFMPEG")):
            if index % stride:
                continue
            frames.append(rgb_frame(path, index, frame))
            indices.append(index)
            if limit and len(frames) >= limit:
                break
    except (OSError, RuntimeError, ValueError, StopIteration) as exc:
        cause = str(exc).split("=== stderr", 1)[0].strip() or first_line(exc)
        raise DataError(
            f"{path}: not a readable video, or a video without frames ({cause[:120]})"
        ) from exc
    if not frames:
        raise DataError(f"{path}: the video has no frames")
    return frames, indices


def rgb_frame(path: Path, index: int, frame: np.ndarray) -> np.ndarray:
    """One decoded frame as contiguous uint8 RGB [H, W, 3]."""
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise DataError(f"{path}: frame {index} is not an 8-bit RGB image ({frame.shape})")
    return np.ascontiguousarray(frame[:, :, :3])
