"""A small dynamic scene for tests: the core's procedural scene with a moving sphere.

Written in the D-NeRF layout (blender files plus a ``time`` per frame). The gradient
sphere slides along +Y as time goes from 0 to 1; everything else stays still.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import synth

MOVER = 3  # index of the gradient sphere in synth.SHAPES
TRAVEL = (0.0, -0.6, 0.0)  # its displacement at t = 1


def shapes_at(time: float) -> tuple[synth.Shape, ...]:
    """The scene's shapes at ``time`` in [0, 1]."""
    mover = synth.SHAPES[MOVER]
    centre = tuple(c + time * d for c, d in zip(mover.center, TRAVEL, strict=True))
    moved = dataclasses.replace(mover, center=centre)
    return tuple(moved if i == MOVER else s for i, s in enumerate(synth.SHAPES))


def write_dynamic_scene(out: str | Path, size: int = 24, views: dict[str, int] | None = None,
                        time_scale: float = 1.0, seed: int = 0) -> Path:  # fmt: skip
    """Write the moving scene; frame i of a split of n views has time i / (n - 1) times
    ``time_scale`` (a scale other than 1 tests the loader's normalisation)."""
    out = Path(out)
    views = views or {"train": 16, "test": 3}
    for split, count in views.items():
        (out / split).mkdir(parents=True)
        frames = []
        for i, c2w in enumerate(synth.camera_poses(split, count, seed)):
            time = i / max(count - 1, 1)
            dirs = synth.ray_directions(c2w, size).reshape(-1, 3)
            rgba = synth.trace_rgba(c2w[:3, 3], dirs, shapes_at(time)).reshape(size, size, 4)
            iio.imwrite(out / split / f"r_{i}.png", np.round(rgba * 255).astype(np.uint8))
            matrix = [[float(v) for v in row] for row in c2w]
            frames.append({"file_path": f"./{split}/r_{i}", "time": time * time_scale,
                           "transform_matrix": matrix})  # fmt: skip
        meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2))
    return out


def generate(out: str | Path, size: int = 24, seed: int = 0) -> Path:
    """``atlas data synth --kind dnerf``: the moving scene; ``seed`` draws the cameras."""
    return write_dynamic_scene(out, size=size, seed=seed)
