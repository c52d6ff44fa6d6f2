"""A generated scene with large motion (``atlas data synth --kind dnerf_motion``).

Textured objects cross the floor among static ones, as people film them (a ball, a
pet, a person walking), unlike D-NeRF's lego whose arm barely moves: a checkered box
slides 1.4 units across the floor while it turns a full circle, a checkered ball rolls
the other way and bounces three times while it spins, and a gradient ball flies an arc
over the scene. A checker floor, a striped pillar and a box stay still. One monocular
camera per frame (the frame's time is its index over the split), D-NeRF layout.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import synth

__all__ = ["SpinningSphere", "mover_centres", "shapes_at", "write_frames", "write_motion_scene"]

FLOOR_Z = -0.62  # top of the floor slab
VIEWS = {"train": 60, "test": 20}  # D-NeRF lego has 50 train and 20 test frames
BOUNCES = 3
BOUNCE_HEIGHT = 0.45


@dataclasses.dataclass(frozen=True)
class SpinningSphere(synth.CheckerSphere):
    """A checker sphere whose texture is turned by ``spin`` radians about world X."""

    spin: float = 0.0

    def surface(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normals in world space; albedo read in the sphere's turned frame."""
        centre = np.asarray(self.center)
        c, s = math.cos(self.spin), math.sin(self.spin)
        turn = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
        local = (points - centre) @ turn + centre  # world -> turned frame (inverse turn)
        _, albedo = super().surface(local)
        normals = (points - centre) / self.radius
        return normals / np.linalg.norm(normals, axis=-1, keepdims=True), albedo


STATIC: tuple[synth.Shape, ...] = (
    synth.Box(
        center=(0.0, 0.0, FLOOR_Z - 0.06),
        half=(1.05, 1.05, 0.06),
        yaw=0.0,
        face_colors=((0.85, 0.85, 0.80),) * 4 + ((0.55, 0.45, 0.35),) * 2,
        dark=0.7,
    ),  # fmt: skip
    synth.Cylinder(
        center_xy=(-0.55, 0.55),
        radius=0.16,
        z_range=(FLOOR_Z, 0.25),
        stripe_colors=((0.12, 0.30, 0.95), (0.15, 0.90, 0.95)),
        cap_color=(0.20, 0.85, 0.30),
    ),  # fmt: skip
    synth.Box(
        center=(0.6, 0.62, FLOOR_Z + 0.15),
        half=(0.15, 0.15, 0.15),
        yaw=0.4,
        face_colors=(
            (0.95, 0.55, 0.1),
            (0.6, 0.2, 0.9),
            (0.1, 0.8, 0.3),
            (0.9, 0.9, 0.2),
            (0.2, 0.5, 0.9),
            (0.9, 0.2, 0.3),
        ),
    ),  # fmt: skip
)


BOX_COLOURS = ((0.10, 0.35, 0.95), (0.10, 0.80, 0.25), (0.90, 0.15, 0.80),
               (0.98, 0.55, 0.08), (0.10, 0.85, 0.90), (0.55, 0.20, 0.90))  # fmt: skip


def mover_centres(time: float) -> list[tuple[float, float, float]]:
    """Centres of the three moving objects at ``time`` in [0, 1]."""
    box = (-0.7 + 1.4 * time, -0.45, FLOOR_Z + 0.17)
    hop = abs(math.sin(math.pi * BOUNCES * time)) * BOUNCE_HEIGHT
    ball = (0.75 - 1.3 * time, 0.05, FLOOR_Z + 0.2 + hop)
    arc = math.sin(math.pi * time)
    flyer = (0.6 * math.cos(math.pi * time), -0.6 * arc + 0.2, 0.1 + 0.5 * arc)
    return [box, ball, flyer]


def shapes_at(time: float) -> tuple[synth.Shape, ...]:
    """Every shape at ``time`` in [0, 1]: the static ones, then the three movers."""
    box_c, ball_c, flyer_c = mover_centres(time)
    box = synth.Box(center=box_c, half=(0.17, 0.17, 0.17), yaw=2.0 * math.pi * time,
                    face_colors=BOX_COLOURS)  # fmt: skip
    ball = SpinningSphere(center=ball_c, radius=0.2, colors=((0.92, 0.16, 0.10),
                          (0.98, 0.82, 0.12)), spin=-1.3 * time / 0.2)  # rolls  # fmt: skip
    flyer = synth.GradientSphere(center=flyer_c, radius=0.16, bottom=(0.90, 0.10, 0.70),
                                 top=(0.25, 0.95, 0.30))  # fmt: skip
    return (*STATIC, box, ball, flyer)


def write_split(out: Path, split: str, count: int, size: int, seed: int) -> None:
    """One split: frame i (its own camera) at time i / (count - 1)."""
    poses = synth.camera_poses(split, count, seed)
    write_frames(out, split, [(c2w, i / max(count - 1, 1)) for i, c2w in enumerate(poses)], size)


def write_frames(out: Path, split: str, cameras: list[tuple[np.ndarray, float]], size: int) -> None:
    """``split`` of the scene in ``out``: a frame per (camera-to-world [4, 4], time), traced
    at ``size`` px, and its ``transforms_<split>.json``."""
    (out / split).mkdir(parents=True, exist_ok=True)
    frames = []
    for i, (c2w, time) in enumerate(cameras):
        dirs = synth.ray_directions(c2w, size).reshape(-1, 3)
        rgba = synth.trace_rgba(c2w[:3, 3], dirs, shapes_at(time)).reshape(size, size, 4)
        iio.imwrite(out / split / f"r_{i:03d}.png", np.round(rgba * 255).astype(np.uint8))
        matrix = [[float(v) for v in row] for row in c2w]
        frames.append({"file_path": f"./{split}/r_{i:03d}", "time": time,
                       "transform_matrix": matrix})  # fmt: skip
    meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "frames": frames}
    (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2))


def write_motion_scene(out: str | Path, size: int = 160, seed: int = 0,
                       views: dict[str, int] | None = None) -> Path:  # fmt: skip
    """Write the large-motion scene to ``out`` (a new or empty folder), atomically: it is
    rendered into a sibling folder first and renamed when complete."""
    out = Path(out)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for split, count in (views or VIEWS).items():
            write_split(staging, split, count, size, seed)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
