"""How close an exported mesh is to the true surface of the procedural (synth) scene.

``python plugins/volsdf/tools/synth_mesh_accuracy.py RUN_DIR/mesh.ply`` prints accuracy
(distance of mesh vertices to the true surface), completeness (distance of true-surface
points to the nearest vertex), their mean (Chamfer), the signed bias and the number of
connected components. The synth scene's shapes are analytic, so their exact signed
distances are known (box and capped cylinder as in Quilez's distance functions).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.spatial import cKDTree

from atlas_core.api import connected_components, read_ply, synth


def rounded_excess(q: np.ndarray) -> np.ndarray:
    """Signed distance from per-axis excesses ``q`` [N, k] of a box-like shape."""
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)


def synth_sdf(points: np.ndarray) -> np.ndarray:
    """Exact signed distance [N] to the union of the synth scene's shapes."""
    distance = np.full(len(points), np.inf)
    for shape in synth.SHAPES:
        if isinstance(shape, synth.Box):
            c, s = math.cos(shape.yaw), math.sin(shape.yaw)
            rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            local = (points - np.asarray(shape.center)) @ rotation
            d = rounded_excess(np.abs(local) - np.asarray(shape.half))
        elif isinstance(shape, synth.Cylinder):
            rho = np.hypot(points[:, 0] - shape.center_xy[0], points[:, 1] - shape.center_xy[1])
            middle = 0.5 * (shape.z_range[0] + shape.z_range[1])
            half = 0.5 * (shape.z_range[1] - shape.z_range[0])
            q = np.stack([rho - shape.radius, np.abs(points[:, 2] - middle) - half], axis=-1)
            d = rounded_excess(q)
        else:
            d = np.linalg.norm(points - np.asarray(shape.center), axis=-1) - shape.radius
        distance = np.minimum(distance, d)
    return distance


def surface_points(count: int = 200_000, seed: int = 0) -> np.ndarray:
    """Points on the true surface: near-surface samples projected along the gradient."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.2, 1.2, (count * 20, 3))
    near = points[np.abs(synth_sdf(points)) < 0.01]
    eps = 1e-4
    gradient = np.stack(
        [(synth_sdf(near + eps * e) - synth_sdf(near - eps * e)) / (2 * eps) for e in np.eye(3)],
        axis=-1,
    )
    return near - synth_sdf(near)[:, None] * gradient


def main() -> None:
    """Print the mesh's accuracy, completeness, bias and components."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mesh", help="a PLY written by `atlas export RUN_DIR mesh`")
    mesh = read_ply(parser.parse_args().mesh)
    vertices = mesh.vertices.astype(np.float64)
    signed = synth_sdf(vertices)
    accuracy = np.abs(signed)
    completeness = cKDTree(vertices).query(surface_points())[0]
    print(
        f"vertices {len(vertices)}, faces {len(mesh.faces)}, "
        f"components {connected_components(mesh)} (the scene has {len(synth.SHAPES)} shapes)"
    )
    for name, values in (("accuracy", accuracy), ("completeness", completeness)):
        print(
            f"{name}: mean {values.mean():.4f}, median {np.median(values):.4f}, "
            f"p90 {np.quantile(values, 0.9):.4f}"
        )
    print(
        f"chamfer {0.5 * (accuracy.mean() + completeness.mean()):.4f}, "
        f"signed bias {signed.mean():+.4f} (negative: mesh inside the true surface)"
    )


if __name__ == "__main__":
    main()
