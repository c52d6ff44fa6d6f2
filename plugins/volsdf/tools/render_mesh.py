"""Render an exported mesh from one of a Blender scene's cameras, shaded by its normals.

``python plugins/volsdf/tools/render_mesh.py RUN_DIR/mesh.ply SCENE --view 0 --out view.png``
draws the mesh as it would appear in test view ``--view`` of a NeRF-synthetic scene:
each triangle is split into points at sub-pixel spacing and z-buffered, so the image
shows the surface itself (holes, floaters, noise), not the radiance field. Colour is the
unit normal mapped to RGB (``0.5 n + 0.5``, the convention of the eval's normal images),
and the background white.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import read_ply


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals [F, 3] of the triangles."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def camera(scene: Path, view: int, size: int) -> tuple[np.ndarray, float]:
    """The camera-to-world matrix [4, 4] and focal length in pixels of a test view."""
    meta = json.loads((scene / "transforms_test.json").read_text())
    pose = np.asarray(meta["frames"][view]["transform_matrix"], dtype=np.float64)
    return pose, 0.5 * size / math.tan(0.5 * float(meta["camera_angle_x"]))


def render(vertices: np.ndarray, faces: np.ndarray, pose: np.ndarray, focal: float, size: int):
    """The z-buffered normal image [size, size, 3] in [0, 1] (white where nothing is)."""
    world_to_camera = np.linalg.inv(pose)
    cam = vertices @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    depth = -cam[:, 2]  # OpenGL/Blender cameras look down -z
    x = focal * cam[:, 0] / depth + 0.5 * size
    y = -focal * cam[:, 1] / depth + 0.5 * size
    normals = face_normals(vertices, faces)
    image = np.ones((size, size, 3))
    zbuffer = np.full(size * size, np.inf)
    # barycentric points per triangle, dense enough that each covers its pixels
    edge = np.maximum.reduce([np.hypot(x[faces[:, i]] - x[faces[:, j]],
                                       y[faces[:, i]] - y[faces[:, j]])
                              for i, j in ((0, 1), (1, 2), (2, 0))])  # fmt: skip
    steps = np.clip(np.ceil(2 * edge), 1, 64).astype(int)
    for count in np.unique(steps):
        chosen = np.nonzero(steps == count)[0]
        u, v = np.meshgrid(np.arange(count + 1), np.arange(count + 1), indexing="ij")
        keep = u + v <= count
        u, v = u[keep] / count, v[keep] / count
        w = 1 - u - v
        tri = faces[chosen]
        px = w * x[tri[:, :1]] + u * x[tri[:, 1:2]] + v * x[tri[:, 2:]]
        py = w * y[tri[:, :1]] + u * y[tri[:, 1:2]] + v * y[tri[:, 2:]]
        pz = w * depth[tri[:, :1]] + u * depth[tri[:, 1:2]] + v * depth[tri[:, 2:]]
        ix, iy = np.floor(px).astype(int), np.floor(py).astype(int)
        ok = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size) & (pz > 0)
        pixel = (iy * size + ix)[ok]
        z = pz[ok]
        owner = np.broadcast_to(chosen[:, None], ok.shape)[ok]
        order = np.lexsort((z, pixel))
        pixel, z, owner = pixel[order], z[order], owner[order]
        first = np.ones(len(pixel), dtype=bool)
        first[1:] = pixel[1:] != pixel[:-1]
        pixel, z, owner = pixel[first], z[first], owner[first]
        nearer = z < zbuffer[pixel]
        zbuffer[pixel[nearer]] = z[nearer]
        image.reshape(-1, 3)[pixel[nearer]] = 0.5 * normals[owner[nearer]] + 0.5
    return image


def main() -> None:
    """Write the rendered view as a PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mesh", type=Path, help="a PLY written by `atlas export RUN_DIR mesh`")
    parser.add_argument("scene", type=Path, help="the Blender scene folder (its test cameras)")
    parser.add_argument("--view", type=int, default=0, help="test view index")
    parser.add_argument("--size", type=int, default=400, help="image width and height")
    parser.add_argument("--out", type=Path, default=Path("mesh_view.png"))
    args = parser.parse_args()
    mesh = read_ply(args.mesh)
    pose, focal = camera(args.scene, args.view, args.size)
    image = render(mesh.vertices.astype(np.float64), mesh.faces, pose, focal, args.size)
    iio.imwrite(args.out, (255 * image).round().astype(np.uint8))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
