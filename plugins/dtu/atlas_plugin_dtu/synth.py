"""A small scan in the DTU/IDR layout, rendered from the core's procedural scene.

Cameras are built from known K, R, t (OpenCV convention: +X right, +Y down, looking
along +Z) in the normalised frame, where the scene lies in the unit sphere; the world
frame is that frame scaled by :data:`SCALE` and moved by :data:`OFFSET`, which is what
``scale_mat_i`` says. ``world_mat_i`` is the world projection times a per-view factor
of either sign (P is homogeneous). Images are ray traced with the shapes of
:mod:`atlas_core.data.synth` over a grey background; masks are their coverage.

Command line: ``atlas-dtu-synth OUT [--views 12] [--width 40] [--height 32] [--seed 0]``
(or ``python -m atlas_plugin_dtu.synth``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import synth
from atlas_plugin_dtu.projection import Camera

SCALE = 200.0
"""World units per normalised unit (DTU scans are in millimetres, objects ~200 mm)."""

OFFSET = np.array([35.0, -12.0, 610.0])
"""World position of the normalised frame's origin."""

OBJECT_SCALE = 1.25
"""Core synth units per normalised unit: its shapes (radius 1.2) land in the unit sphere."""

CAMERA_DISTANCE = 2.6
"""Distance of the cameras from the origin, in normalised units."""

LAYOUT = ("image", "mask", "cameras.npz")
"""What a scan folder holds."""

REALISTIC_SIZE = 128
"""Image width from which ``atlas data synth --kind dtu`` writes the realistic scene."""

BACKGROUND = np.array([0.3, 0.3, 0.35])
"""Colour behind the object (DTU images have a background; the mask marks the object)."""


def scale_matrix() -> np.ndarray:
    """``scale_mat``: normalised to world coordinates, ``x_w = SCALE x_n + OFFSET``."""
    matrix = np.diag([SCALE, SCALE, SCALE, 1.0])
    matrix[:3, 3] = OFFSET
    return matrix


def rotation(eye: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World-to-camera rotation of an OpenCV camera at ``eye`` facing ``target``, +Z up."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(roll), math.sin(roll)
    rolled = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rolled @ np.stack([right, down, forward])


def make_cameras(
    views: int, size: tuple[int, int], seed: int = 0, arc: float = 120.0
) -> list[Camera]:
    """Normalised-frame cameras on a front arc (as DTU's), fx != fy, off-centre principal point."""
    width, height = size
    rng = np.random.default_rng(seed)
    cameras = []
    for i in range(views):
        azimuth = math.radians(-90.0 + arc * ((i + 0.5) / views - 0.5))
        elevation = math.radians(rng.uniform(15.0, 50.0))
        eye = CAMERA_DISTANCE * np.array(
            [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
             math.sin(elevation)]
        )  # fmt: skip
        rot = rotation(eye, rng.uniform(-0.05, 0.05, 3), math.radians(rng.uniform(-8.0, 8.0)))
        fx = width * rng.uniform(0.97, 1.03)
        k = np.array(
            [[fx, 0.0, (width - 1) / 2 + 0.8], [0.0, 0.98 * fx, (height - 1) / 2 - 0.6],
             [0.0, 0.0, 1.0]]
        )  # fmt: skip
        cameras.append(Camera(k, rot, -rot @ eye))
    return cameras


def world_matrix(camera: Camera, factor: float) -> np.ndarray:
    """``world_mat``: 4x4, top rows ``factor * K [R | t] scale_mat^-1`` (world projection)."""
    matrix = np.eye(4)
    matrix[:3] = factor * camera.projection() @ np.linalg.inv(scale_matrix())
    return matrix


def render(camera: Camera, size: tuple[int, int], supersample: int = 2) -> tuple[np.ndarray, ...]:
    """RGB image [H, W, 3] and mask [H, W] (uint8) of the scene seen by ``camera``."""
    width, height = size
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5  # OpenCV: centres at integers
    cols = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    rows = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    u, v = np.meshgrid(cols, rows, indexing="xy")
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)
    dirs = pixels @ np.linalg.inv(camera.K).T @ camera.R  # R^T K^-1 [u, v, 1]
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    rgb, hit = synth.trace(OBJECT_SCALE * camera.centre, dirs)
    coverage = hit.astype(np.float64)[:, None]
    colour = rgb * coverage + BACKGROUND * (1.0 - coverage)
    stack = np.concatenate([colour, coverage], axis=1).reshape(
        height, supersample, width, supersample, 4
    )
    mean = stack.mean(axis=(1, 3))
    as_uint8 = np.round(np.clip(mean, 0.0, 1.0) * 255.0).astype(np.uint8)
    return as_uint8[..., :3], as_uint8[..., 3]


def write_scene(
    out: str | Path, views: int = 12, size: tuple[int, int] = (40, 32), seed: int = 0,
    supersample: int = 2,
) -> Path:  # fmt: skip
    """Write a scan to ``out`` and return it.

    ``out`` may be a folder with other files (say a blender scene, so that one folder
    serves both data kinds), but not one that already has ``image/``, ``mask/`` or
    ``cameras.npz``: that raises FileExistsError.
    """
    out = Path(out)
    width, height = size
    if views < 1 or width < 1 or height < 1 or supersample < 1:
        raise ValueError("views, width, height and supersample must be positive")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    taken = [name for name in LAYOUT if (out / name).exists()]
    if taken:
        raise FileExistsError(f"{out} already holds {', '.join(taken)}")
    (out / "image").mkdir(parents=True)
    (out / "mask").mkdir()
    arrays = {}
    factors = np.random.default_rng(seed + 1).uniform(0.5, 2.0, views)
    for i, camera in enumerate(make_cameras(views, size, seed)):
        rgb, mask = render(camera, size, supersample)
        iio.imwrite(out / "image" / f"{i:06d}.png", rgb)
        iio.imwrite(out / "mask" / f"{i:03d}.png", mask)
        arrays[f"world_mat_{i}"] = world_matrix(camera, factors[i] * (-1.0) ** i)
        arrays[f"scale_mat_{i}"] = scale_matrix()
    np.savez(out / "cameras.npz", **arrays)
    return out


def main(argv: list[str] | None = None) -> int:
    """``atlas-dtu-synth OUT``: write a generated scan; exit 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="atlas-dtu-synth", description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--width", type=int, default=40)
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_scene(args.out, args.views, (args.width, args.height), args.seed)
    except (FileExistsError, ValueError) as exc:
        print(f"atlas-dtu-synth: error: {args.out}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({args.views} views, {args.width}x{args.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def generate(out: str | Path, size: int = 40, seed: int = 0) -> Path:
    """``atlas data synth --kind dtu``: a scan ``size`` wide and 4/5 as high; from
    :data:`REALISTIC_SIZE` pixels on, the realistic scene (``realistic_scan``)."""
    if size >= REALISTIC_SIZE:
        from atlas_plugin_dtu.realistic_scan import write_realistic_scan

        return write_realistic_scan(out, size=size, seed=seed)
    return write_scene(out, size=(size, max(8, size * 4 // 5)), seed=seed)
