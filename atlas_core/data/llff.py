"""LLFF scenes: ``poses_bounds.npy`` plus ``images/`` or ``images_N/`` (forward-facing
captures of the NeRF paper, Mildenhall et al. 2019/2020).

Each row of ``poses_bounds.npy`` is a 3x5 matrix flattened row-major (a camera-to-world
3x4 whose rotation columns are [down, right, back], then a column [height, width, focal]
at the original resolution) followed by the near and far depth of that view's content.
Our own code; the conventions follow the NeRF authors' ``load_llff.py``
(github.com/bmild/nerf, ``_load_data``, ``recenter_poses``, ``load_llff_data``): columns
reordered to [right, up, back] (OpenGL), positions and bounds scaled by
``1 / (0.75 * min(bounds))`` so the nearest content sits at about 1/0.75, and every pose
multiplied by the inverse of the average pose, so the average camera is the identity
(looking down -Z, +Y up). Without NDC their ``run_nerf.py`` renders from
``0.9 * min(bounds)`` to ``max(bounds)``; so do we. The box holds every camera's view
frustum between those depths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atlas_core.data.real import (
    check_folder,
    check_options,
    frustum_box,
    list_images,
    load_pixels,
    make_scene,
    pick_folder,
)
from atlas_core.data.scene import SceneData
from atlas_core.errors import DataError

__all__ = ["BD_FACTOR", "average_pose", "load_llff", "read_poses_bounds"]

BD_FACTOR = 0.75  # load_llff_data(bd_factor=.75)


def read_poses_bounds(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-to-world [N, 3, 4] in LLFF's column order, hwf [N, 3] and bounds [N, 2]."""
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from exc
    if array.ndim != 2 or array.shape[1] != 17 or array.shape[0] == 0:
        raise DataError(f"{path}: expected shape (N, 17) (3x5 pose + 2 bounds), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise DataError(f"{path}: poses and bounds must be finite numbers")
    array = array.astype(np.float64)
    poses = array[:, :15].reshape(-1, 3, 5)
    bounds = array[:, 15:]
    if (bounds <= 0).any() or (bounds[:, 0] >= bounds[:, 1]).any():
        raise DataError(f"{path}: every view needs bounds 0 < near < far")
    if (poses[:, :, 4] <= 0).any():
        raise DataError(f"{path}: height, width and focal (column 5) must be positive")
    return poses[:, :, :4], poses[:, :, 4], bounds


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """The mean camera [4, 4]: mean centre, summed back axis, summed up axis
    (``poses_avg`` and ``viewmatrix`` in bmild/nerf's load_llff.py)."""
    back = c2w[:, :3, 2].sum(axis=0)
    back /= np.linalg.norm(back)
    up = c2w[:, :3, 1].sum(axis=0)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    avg = np.eye(4)
    avg[:3, 0], avg[:3, 1], avg[:3, 2] = right, np.cross(back, right), back
    avg[:3, 3] = c2w[:, :3, 3].mean(axis=0)
    return avg


def load_llff(path: str | Path, downscale: int = 1, test_every: int = 8) -> SceneData:
    """Load an LLFF folder; ``downscale`` reads ``images_N/`` when it exists."""
    root = check_folder(path)
    check_options(root, downscale, test_every)
    source = root / "poses_bounds.npy"
    llff, hwf, bounds = read_poses_bounds(source)
    folder, factor = pick_folder(root, downscale)
    files = list_images(folder)
    if len(files) != len(llff):
        raise DataError(f"{folder}: {len(files)} images, but {source.name} has {len(llff)} poses")
    images = load_pixels(files, factor)
    height, width = images.shape[1:3]
    focal = float(hwf[0, 2]) * width / float(hwf[0, 1])  # hwf is at the original resolution
    # [down, right, back] -> [right, up, back] (load_llff_data's concatenate)
    c2w = np.tile(np.eye(4), (len(llff), 1, 1))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = llff[:, :, 1], -llff[:, :, 0], llff[:, :, 2]
    c2w[:, :3, 3] = llff[:, :, 3]
    scale = 1.0 / (bounds.min() * BD_FACTOR)
    c2w[:, :3, 3] *= scale
    bounds = bounds * scale
    c2w = np.linalg.inv(average_pose(c2w)) @ c2w  # recenter_poses
    near, far = 0.9 * float(bounds.min()), float(bounds.max())
    intrinsics = np.tile([focal, focal, width / 2, height / 2], (len(c2w), 1))
    box = frustum_box(c2w, intrinsics, width, height, near, far)
    names = [f.stem for f in files]
    return make_scene(
        images, c2w, None, focal, names, test_every, near, far, box, root.name, measured=True
    )
