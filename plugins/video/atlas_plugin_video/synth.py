"""A generated video for tests and demos: the core's procedural scene seen from the
default static camera while its gradient sphere slides along -Y, over white."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import synth

MOVER = 3  # the gradient sphere in synth.SHAPES
TRAVEL = np.array([0.0, -0.8, 0.0])  # its displacement over the whole video


def render_frame(time: float, size: int, distance: float = 4.0, fov: float = 50.0) -> np.ndarray:
    """uint8 RGB [size, size, 3] of the scene at ``time`` in [0, 1] from ``(0, 0, distance)``."""
    mover = synth.SHAPES[MOVER]
    moved = dataclasses.replace(mover, center=tuple(np.asarray(mover.center) + time * TRAVEL))
    shapes = tuple(moved if i == MOVER else s for i, s in enumerate(synth.SHAPES))
    focal = 0.5 * size / math.tan(0.5 * math.radians(fov))
    s = (np.arange(size) + 0.5 - 0.5 * size) / focal
    dirs = np.stack(np.broadcast_arrays(s[None, :], -s[:, None], -np.ones((1, 1))), axis=-1)
    dirs = (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).reshape(-1, 3)
    origins = np.broadcast_to(np.array([0.0, 0.0, distance]), dirs.shape)
    ts = np.stack([shape.intersect(origins, dirs) for shape in shapes])
    nearest, t = np.argmin(ts, axis=0), ts.min(axis=0)
    rgb = np.ones_like(dirs)
    for k, shape in enumerate(shapes):
        sel = np.isfinite(t) & (nearest == k)
        if sel.any():
            normals, albedo = shape.surface(origins[sel] + t[sel, None] * dirs[sel])
            shade = synth.AMBIENT + (1 - synth.AMBIENT) * np.maximum(0, normals @ synth.LIGHT_DIR)
            rgb[sel] = np.clip(albedo * shade[:, None], 0, 1)
    return np.round(rgb.reshape(size, size, 3) * 255).astype(np.uint8)


def write_video(path: str | Path, frames: int = 24, size: int = 32, fps: int = 12) -> Path:
    """Write ``frames`` frames (times i / (frames - 1)) as an H.264 mp4 at ``path``."""
    path = Path(path)
    times = [i / max(frames - 1, 1) for i in range(frames)]
    video = np.stack([render_frame(t, size) for t in times])
    iio.imwrite(path, video, plugin="FFMPEG", fps=fps, macro_block_size=1)
    return path


def generate(out: str | Path, size: int = 32, seed: int = 0) -> Path:
    """``atlas data synth --kind video``: ``out/clip.mp4``; the clip has nothing random, so a
    ``seed`` other than 0 is refused rather than ignored."""
    if seed != 0:
        raise ValueError("the video generator draws nothing at random; --seed must be 0")
    Path(out).mkdir(parents=True)
    return write_video(Path(out) / "clip.mp4", size=size)
