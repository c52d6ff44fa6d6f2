"""The files of a processed scene: nerfstudio's ``transforms.json``, downscaled image
folders and the sparse points as PLY.

Poses are stored as COLMAP found them, as nerfstudio's ``ns-process-data`` writes them
(nerfstudio/process_data/colmap_utils.py, ``colmap_to_json``): camera-to-world in
OpenGL camera axes, the world's axes permuted by ``applied_transform`` (x <- x, y <- z,
z <- -y: COLMAP's world usually has gravity along +y, as its first camera's image down),
and the points in that world too. They are not oriented or scaled here: the
``nerfstudio`` data kind orients (mean camera up to +Z), centres and scales them when
it loads the scene (``real.orient_and_scale``), as nerfstudio's loader does.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from atlas_core.data.images import downscale_rgba, read_rgba
from atlas_core.data.process.sfm import Solution
from atlas_core.data.real import OPENGL_FROM_OPENCV
from atlas_core.errors import DataError

__all__ = [
    "APPLIED_TRANSFORM",
    "DOWNSCALES",
    "camera_to_world",
    "points_in_scene",
    "read_points",
    "transforms",
    "write_downscaled",
    "write_json",
    "write_points",
]

# nerfstudio's world from COLMAP's world (rows: new x, y, z), as its colmap_to_json
APPLIED_TRANSFORM = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]])
DOWNSCALES = (2, 4, 8)
MIN_SIDE = 8  # no images_N folder whose images would be smaller than this


def camera_to_world(world_to_camera: np.ndarray) -> np.ndarray:
    """COLMAP poses [N, 3, 4] (world to OpenCV camera) as camera-to-world [N, 4, 4] in
    OpenGL camera axes and nerfstudio's world axes."""
    n = len(world_to_camera)
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, :3] = world_to_camera
    c2w = np.linalg.inv(w2c) @ OPENGL_FROM_OPENCV
    applied = np.eye(4)
    applied[:3] = APPLIED_TRANSFORM
    return applied @ c2w


def transforms(solution: Solution, files: list[str]) -> dict:
    """The ``transforms.json`` of a solution; ``files[i]`` is image i's path in the scene."""
    cam = solution.camera
    c2w = camera_to_world(solution.world_to_camera)
    frames = [
        {"file_path": file, "transform_matrix": pose.tolist(), "colmap_im_id": int(image_id)}
        for file, pose, image_id in zip(files, c2w, solution.image_ids, strict=True)
    ]
    return {
        "camera_model": "OPENCV",
        "fl_x": cam.fx,
        "fl_y": cam.fy,
        "cx": cam.cx,
        "cy": cam.cy,
        "w": cam.width,
        "h": cam.height,
        "k1": cam.k1,
        "k2": cam.k2,
        "p1": cam.p1,
        "p2": cam.p2,
        "colmap_camera_model": cam.model,
        "frames": frames,
        "applied_transform": APPLIED_TRANSFORM.tolist(),
        "ply_file_path": "sparse_pc.ply",
    }


def write_downscaled(
    files: list[Path], root: Path, factors: tuple[int, ...] = DOWNSCALES
) -> list[int]:
    """Area-averaged copies ``root/images_N/NAME`` of ``files`` for each factor N whose
    images keep at least 8 pixels a side; returns the factors written."""
    written: list[int] = []
    for file in files:
        image = read_rgba(file)
        opaque = bool((image[..., 3] == 255).all())
        height, width = image.shape[:2]
        for factor in factors:
            if min(height, width) // factor < MIN_SIDE:
                continue
            small = downscale_rgba(torch.from_numpy(image)[None], factor)[0].numpy()
            if opaque:
                small = small[..., :3]
            folder = root / f"images_{factor}"
            folder.mkdir(exist_ok=True)
            target = folder / file.name
            if file.suffix.lower() in (".jpg", ".jpeg"):
                iio.imwrite(target, small[..., :3], quality=95)
            else:
                iio.imwrite(target, small)
            if factor not in written:
                written.append(factor)
    return written


def write_points(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Points [P, 3] and colours [P, 3] uint8 as binary little-endian PLY (x y z red green
    blue), the layout nerfstudio's ``sparse_pc.ply`` has."""
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by nerf-atlas\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    vertex = np.empty(len(points), dtype=[("p", "<f4", 3), ("c", "u1", 3)])
    vertex["p"], vertex["c"] = points, colours
    path.write_bytes(header.encode("ascii") + vertex.tobytes())


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Points and colours of a PLY written by :func:`write_points`."""
    data = Path(path).read_bytes()
    marker = b"end_header\n"
    if not data.startswith(b"ply\n") or marker not in data:
        raise DataError(f"{path}: not a PLY file")
    end = data.index(marker) + len(marker)
    header = data[:end].decode("ascii").splitlines()
    counts = [int(line.split()[2]) for line in header if line.startswith("element vertex")]
    if not counts:
        raise DataError(f"{path}: PLY file has no vertex element")
    vertex = np.frombuffer(data, np.dtype([("p", "<f4", 3), ("c", "u1", 3)]), counts[0], end)
    return vertex["p"].astype(np.float64), vertex["c"].copy()


def points_in_scene(solution: Solution) -> np.ndarray:
    """The sparse points in the world of ``transform_matrix`` (``applied_transform``)."""
    return solution.points @ APPLIED_TRANSFORM[:, :3].T


def write_json(path: Path, data: dict) -> None:
    """Indented JSON."""
    path.write_text(json.dumps(data, indent=2) + "\n")
