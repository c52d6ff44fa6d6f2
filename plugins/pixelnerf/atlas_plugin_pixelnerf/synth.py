"""Many procedural objects, each with its own posed views: data for the ``pixel-single`` kind.

Each object is one or two of the core's analytic shapes (``atlas_core.data.synth``:
checkered and gradient spheres, boxes, striped cylinders) with random sizes, colours and
positions, seen from its own cameras on the upper hemisphere (the core's train spiral,
rotated by a per-object seed). Layout::

    OUT/objects.json                  {"train": ["obj_000", ...], "test": [...]}
    OUT/obj_000/transforms_train.json  blender format: every view of the object
    OUT/obj_000/train/r_0.png ...

Command line: ``atlas-pixel-synth OUT [--objects 40] [--test-objects 8] [--views 12]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import synth

INDEX = "objects.json"


def random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated colour (the background is white, so avoid near-white)."""
    hue = rng.uniform(0.0, 1.0)
    rgb = 0.5 + 0.45 * np.cos(2 * math.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))
    return tuple(float(c) for c in rgb * rng.uniform(0.55, 1.0))


def random_shape(rng: np.random.Generator, offset: np.ndarray) -> synth.Shape:
    """One shape of a random type, size and colour near ``offset``."""
    kind = int(rng.integers(4))
    size = float(rng.uniform(0.45, 0.75))
    centre = tuple(float(c) for c in offset)
    if kind == 0:
        colours = (random_colour(rng), random_colour(rng))
        return synth.CheckerSphere(centre, size, colours, cells_around=int(rng.integers(4, 9)))
    if kind == 1:
        return synth.GradientSphere(centre, size, random_colour(rng), random_colour(rng))
    if kind == 2:
        half = tuple(float(h) for h in size * rng.uniform(0.6, 1.0, size=3))
        faces = tuple(random_colour(rng) for _ in range(6))
        return synth.Box(centre, half, float(rng.uniform(0, math.pi)), faces)
    z0 = centre[2] - size
    return synth.Cylinder(
        centre[:2],
        0.6 * size,
        (z0, z0 + 2 * size),
        (random_colour(rng), random_colour(rng)),
        random_colour(rng),
        stripes=int(rng.integers(2, 6)),
    )


def random_object(seed: int) -> tuple[synth.Shape, ...]:
    """One or two shapes within the core scene's ball (radius 1.2)."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 3))
    offsets = rng.uniform(-0.3, 0.3, size=(count, 3)) if count > 1 else np.zeros((1, 3))
    return tuple(random_shape(rng, offset) for offset in offsets)


def render(shapes: tuple[synth.Shape, ...], c2w: np.ndarray, size: int) -> np.ndarray:
    """Straight-alpha RGBA uint8 [size, size, 4], 2x2 supersampled."""
    ss = 2
    dirs = synth.ray_directions(c2w, size, ss).reshape(-1, 3)
    premul = (
        synth.trace_rgba(c2w[:3, 3], dirs, shapes).reshape(size, ss, size, ss, 4).mean(axis=(1, 3))
    )
    alpha = premul[..., 3:]
    rgb = np.where(alpha > 0, premul[..., :3] / np.maximum(alpha, 1e-12), 0.0)
    return np.round(np.concatenate([rgb, alpha], axis=-1) * 255).astype(np.uint8)


def write_object(folder: Path, seed: int, views: int, size: int) -> None:
    """One object's views in blender layout (split ``train`` holds all of them)."""
    shapes = random_object(seed)
    (folder / "train").mkdir(parents=True)
    frames = []
    for i, c2w in enumerate(synth.camera_poses("train", views, seed=seed)):
        iio.imwrite(folder / "train" / f"r_{i}.png", render(shapes, c2w, size))
        matrix = [[float(v) for v in row] for row in c2w]
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": matrix})
    meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "frames": frames}
    (folder / "transforms_train.json").write_text(json.dumps(meta, indent=2) + "\n")


def write_objects(
    out: str | Path,
    objects: int = 40,
    test_objects: int = 8,
    views: int = 12,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``objects`` training and ``test_objects`` held-out objects into ``out``."""
    out = Path(out)
    if objects < 1 or test_objects < 1:
        raise ValueError("need at least one training and one test object")
    if views < 2 or size < 4:
        raise ValueError("need at least 2 views per object and images of at least 4 pixels")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    names = [f"obj_{i:03d}" for i in range(objects + test_objects)]
    for i, name in enumerate(names):
        write_object(out / name, seed * 100_003 + i, views, size)
    index = {"train": names[:objects], "test": names[objects:]}
    (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """``atlas-pixel-synth OUT``: write a multi-object data set (exit 2 on bad input)."""
    parser = argparse.ArgumentParser(prog="atlas-pixel-synth", description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--objects", type=int, default=40, help="training objects")
    parser.add_argument("--test-objects", type=int, default=8, help="held-out objects")
    parser.add_argument("--views", type=int, default=12, help="views per object")
    parser.add_argument("--size", type=int, default=64, help="image width and height")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_objects(args.out, args.objects, args.test_objects, args.views, args.size, args.seed)
    except (FileExistsError, ValueError) as exc:
        print(f"atlas-pixel-synth: error: {args.out}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({args.objects}+{args.test_objects} objects, {args.views} views)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def generate(out: str | Path, size: int = 32, seed: int = 0) -> Path:
    """``atlas data synth --kind pixel-single``: 8 training and 2 held-out objects."""
    return write_objects(out, objects=8, test_objects=2, views=6, size=size, seed=seed)
