"""Chamfer distance of a mesh to a generated scene's true surface, the way DTU evaluates.

Jensen et al. 2014 (the DTU MVS benchmark) and its evaluation script as NeuS/VolSDF use
it: the mesh is sampled uniformly by area; both point sets are thinned to one point per
``density``-sized cell; mesh points below the ground plane and outside what the cameras
saw (inside no view's mask: DTU's ObsMask) are left out, and so are true points no camera
sees (outside every mask, or behind a nearer true surface in every view: DTU's reference
scans hold only what the scanner saw; ``--all-truth`` keeps them); **accuracy** is the mean
distance from the mesh's points to the truth, **completeness** the mean distance from
the truth's points to the mesh, each over distances under ``max_dist`` (DTU: 20 mm, which
is 6.7% of a 300 mm object, the default here), and the Chamfer distance is their mean.
Each term is also given as a percentage of the objects' size.

The truth is the scene's ``truth.npz`` (``atlas data synth --kind dtu|nerv_point --size
128`` or more writes it): points in the loaded scene's frame, the ground plane, the
objects' size and, for DTU scans, ``scale_mat``. A mesh of a DTU run is in the scan's
world frame (``atlas export`` writes it so); it is mapped back through ``scale_mat`` and
the terms are given in both frames.

    python tools/chamfer.py RUN/mesh.ply SCENE [--kind dtu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from atlas_core.api import project, read_ply
from atlas_core.commands.mesh_visibility import MASK_LEVEL
from atlas_core.data.scene import SceneData
from atlas_core.errors import AtlasError

__all__ = [
    "chamfer",
    "load_scene",
    "main",
    "observed",
    "projections",
    "sample_mesh",
    "seen",
    "thin",
]

MAX_DIST = 0.067  # of the objects' size: DTU's 20 mm on a ~300 mm object
DENSITY = 0.002  # of the objects' size: the cell points are thinned to
OCCLUSION = 0.01  # of the objects' size: how far behind the nearest true point is hidden


def sample_mesh(vertices: np.ndarray, faces: np.ndarray, spacing: float, seed: int = 0):  # noqa: ANN201
    """Points [M, 3] uniform by area on the mesh, about one per ``spacing``^2, and vertices."""
    corners = vertices[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    count = int(min(max(area.sum() / spacing**2, 1), 5e6))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(faces), count, p=area / area.sum())
    a, b = rng.random((2, count))
    flip = a + b > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    tri = corners[chosen]
    points = tri[:, 0] + a[:, None] * (tri[:, 1] - tri[:, 0]) + b[:, None] * (tri[:, 2] - tri[:, 0])
    return np.concatenate([points, vertices.astype(np.float64)])


def thin(points: np.ndarray, cell: float) -> np.ndarray:
    """One point per occupied cube of side ``cell`` (DTU's downsampling)."""
    keys = np.floor(points / cell).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    return points[np.sort(first)]


def load_scene(path: Path, kind: str) -> SceneData:
    """The scene through its data kind (all splits: every camera counts as having seen)."""
    from atlas_core.plugins import load

    plugin = {"dtu": "dtu", "nerv_point": "relight"}.get(kind)
    registry = load([plugin] if plugin else []).registry
    loader = registry.get("datasets", kind).factory
    return loader(path, test_every=0) if kind == "dtu" else loader(path)


def projections(points: np.ndarray, scene: SceneData):  # noqa: ANN201 - a generator
    """Per view: the view, the indices of the points in its frame and in front of it, their
    flat pixel indices and their depths."""
    for views in scene.splits.values():
        for i in range(len(views)):
            intrinsics = views.intrinsics(i)
            u, v, depth = project(points, views.c2w[i].double().numpy(), intrinsics)
            col, row = np.floor(u), np.floor(v)
            inside = (col >= 0) & (col < views.width) & (row >= 0) & (row < views.height)
            index = np.nonzero(inside & (depth > 0))[0]
            pixel = row[index].astype(np.int64) * views.width + col[index].astype(np.int64)
            alpha = views.images[i, :, :, 3].numpy().reshape(-1)[pixel]
            yield intrinsics, index, pixel, depth[index], alpha, views


def observed(points: np.ndarray, scene: SceneData) -> np.ndarray:
    """Boolean [P]: points inside the mask of at least one view (DTU's ObsMask)."""
    result = np.zeros(len(points), dtype=bool)
    for _, index, _, _, alpha, _ in projections(points, scene):
        result[index[alpha > MASK_LEVEL]] = True
    return result


def seen(points: np.ndarray, scene: SceneData, tolerance: float) -> np.ndarray:
    """Boolean [P]: points some view sees, inside its mask and within ``tolerance`` plus two
    pixel footprints of the nearest of the points in their pixel (a z-buffer of the points
    themselves; the footprints allow for a surface's slope across one pixel)."""
    result = np.zeros(len(points), dtype=bool)
    for intrinsics, index, pixel, depth, alpha, views in projections(points, scene):
        nearest = np.full(views.height * views.width, np.inf)
        np.minimum.at(nearest, pixel, depth)
        front = depth <= nearest[pixel] + tolerance + 2 * depth / intrinsics[0]
        result[index[front & (alpha > MASK_LEVEL)]] = True
    return result


def chamfer(
    mesh_points: np.ndarray, truth: np.ndarray, plane: np.ndarray, size: float,
    scene: SceneData | None, max_dist: float = MAX_DIST, density: float = DENSITY,
    all_truth: bool = False,
) -> dict[str, float]:  # fmt: skip
    """DTU's terms for mesh points and true points in one frame (see the module text)."""
    cell = density * size
    pred = thin(mesh_points, cell)
    gt = thin(truth.astype(np.float64), cell)
    truth_count = len(gt)
    if scene is not None and not all_truth:
        gt = gt[seen(gt, scene, OCCLUSION * size)]
        if not len(gt):
            raise AtlasError("no true point is seen by any camera")
    above = pred @ plane[:3] + plane[3] > -cell
    keep = above & (observed(pred, scene) if scene is not None else True)
    pred = pred[keep]
    if not len(pred):
        raise AtlasError("no mesh point above the ground plane inside the cameras' masks")
    limit = max_dist * size
    to_truth, _ = cKDTree(gt).query(pred, workers=-1)
    to_mesh, _ = cKDTree(pred).query(gt, workers=-1)
    accuracy = float(to_truth[to_truth < limit].mean()) if (to_truth < limit).any() else limit
    completeness = float(to_mesh[to_mesh < limit].mean()) if (to_mesh < limit).any() else limit
    return {
        "accuracy": accuracy,
        "completeness": completeness,
        "chamfer": 0.5 * (accuracy + completeness),
        "accuracy_median": float(np.median(to_truth)),
        "completeness_median": float(np.median(to_mesh)),
        "accuracy_outliers": float((to_truth >= limit).mean()),
        "completeness_outliers": float((to_mesh >= limit).mean()),
        "mesh_points": int(len(pred)),
        "mesh_points_left_out": int((~keep).sum()),
        "truth_points": int(len(gt)),
        "truth_points_unseen": truth_count - int(len(gt)),
        "size": size,
        "max_dist": limit,
    }


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the terms; exit 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mesh", type=Path)
    parser.add_argument("scene", type=Path, help="a generated scene with truth.npz")
    parser.add_argument("--kind", choices=("dtu", "nerv_point"), help="default: from the scene")
    parser.add_argument("--mesh-frame", choices=("auto", "world", "scene"), default="auto",
                        help="auto: world when the truth has scale_mat (DTU exports)")  # fmt: skip
    parser.add_argument("--max-dist", type=float, default=MAX_DIST, help="of the size")
    parser.add_argument("--density", type=float, default=DENSITY, help="of the size")
    parser.add_argument("--no-obs-mask", action="store_true",
                        help="keep mesh and true points no camera saw")  # fmt: skip
    parser.add_argument("--all-truth", action="store_true", help="keep true points no camera sees")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        if not (args.scene / "truth.npz").is_file():
            raise AtlasError(f"{args.scene / 'truth.npz'}: missing (generate at --size 128+)")
        if not args.mesh.is_file():
            raise AtlasError(f"{args.mesh}: no such mesh")
        truth = np.load(args.scene / "truth.npz")
        kind = args.kind or ("dtu" if (args.scene / "cameras.npz").is_file() else "nerv_point")
        mesh = read_ply(args.mesh)
        scale = truth["scale_mat"] if "scale_mat" in truth.files else None
        world = args.mesh_frame == "world" or (args.mesh_frame == "auto" and scale is not None)
        if world and scale is None:
            raise AtlasError(f"{args.scene / 'truth.npz'}: no scale_mat for a world-frame mesh")
        size = float(truth["size"])
        points = sample_mesh(mesh.vertices, mesh.faces, args.density * size / 2)
        if world:
            points = (points - scale[:3, 3]) @ np.linalg.inv(scale[:3, :3]).T
        scene = None if args.no_obs_mask else load_scene(args.scene, kind)
        terms = chamfer(points, truth["points"], truth["plane"], size, scene, args.max_dist,
                        args.density, args.all_truth)  # fmt: skip
    except AtlasError as exc:
        print(f"chamfer: error: {exc}", file=sys.stderr)
        return 2
    if world:
        unit = float(abs(np.linalg.det(scale[:3, :3])) ** (1 / 3))
        for key in ("accuracy", "completeness", "chamfer"):
            terms[f"{key}_world"] = terms[key] * unit
    for key in ("accuracy", "completeness", "chamfer"):
        terms[f"{key}_percent"] = 100 * terms[key] / size
    print(json.dumps(terms, indent=2))
    if args.json:
        args.json.write_text(json.dumps(terms, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
