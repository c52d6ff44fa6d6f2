"""Shared pieces of the real-capture data kinds (``llff``, ``colmap``, ``nerfstudio``).

Image folders (``images/`` or a ready-made ``images_N/``), held-out views, OpenCV
lens undistortion, nerfstudio's orientation and scale, and the scene box.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from atlas_core.data.blender import IMAGE_SUFFIXES, read_images
from atlas_core.data.images import downscale_rgba
from atlas_core.data.scene import SceneData, Views
from atlas_core.errors import DataError, warn
from atlas_core.nerf.cameras import INTRINSICS

__all__ = [
    "OPENGL_FROM_OPENCV",
    "check_folder",
    "check_options",
    "frustum_box",
    "hold_out",
    "image_folders",
    "list_images",
    "load_pixels",
    "make_scene",
    "orient_and_scale",
    "pick_folder",
    "rotation_between",
    "undistort",
]

# camera axes: OpenCV (x right, y down, z forward) to OpenGL (x right, y up, z back)
OPENGL_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def check_folder(path: str | Path) -> Path:
    """The scene folder, or a DataError when it is missing or a file."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a data folder")
    return root


def check_options(root: Path, downscale: int, test_every: int) -> None:
    """``data.downscale`` >= 1 and ``data.test_every`` 0 (no test views) or >= 2."""
    if downscale < 1:
        raise DataError(f"{root}: downscale must be >= 1, got {downscale}")
    if test_every < 0 or test_every == 1:
        raise DataError(f"{root}: test_every must be 0 (no test views) or >= 2, got {test_every}")


def image_folders(root: Path) -> dict[int, Path]:
    """``{1: images/, N: images_N/}`` for the image folders that exist."""
    found = {}
    if (root / "images").is_dir():
        found[1] = root / "images"
    for entry in root.iterdir() if root.is_dir() else ():
        match = re.fullmatch(r"images_(\d+)", entry.name)
        if match and entry.is_dir() and int(match.group(1)) > 1:
            found[int(match.group(1))] = entry
    return dict(sorted(found.items()))


def pick_folder(root: Path, downscale: int) -> tuple[Path, int]:
    """The image folder for ``downscale`` and the factor still to apply to its images.

    ``images_N`` when it exists (as the NeRF and nerfstudio loaders read it), else the
    largest ``images_K`` with K dividing N, downsampled by N / K; with no such folder, the
    least downscaled one there is, with a warning.
    """
    folders = image_folders(root)
    if not folders:
        raise DataError(f"{root / 'images'}: image folder is missing (no images/ or images_N/)")
    usable = [k for k in folders if downscale % k == 0]
    if usable:
        k = max(usable)
        return folders[k], downscale // k
    k = min(folders)
    warn(f"{root}: no images/ for downscale {downscale}; reading {folders[k].name} instead")
    return folders[k], 1


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: p.name)


def load_pixels(files: list[Path], factor: int) -> torch.Tensor:
    """Images [N, H, W, 4] uint8 (one size), area-downsampled by ``factor``."""
    stack = torch.from_numpy(np.stack(read_images(files)))
    height, width = stack.shape[1:3]
    if factor > min(height, width):
        raise DataError(
            f"{files[0]}: downscale {factor} is larger than the {width}x{height} images"
        )
    return downscale_rgba(stack, factor)


def hold_out(count: int, test_every: int) -> tuple[list[int], list[int]]:
    """Train and test indices: every ``test_every``-th view (``i % n == 0``) is a test view,
    as the NeRF authors' LLFF setup does (``llffhold = 8``); 0 holds out nothing."""
    if test_every == 0 or count < 2:
        return list(range(count)), []
    test = [i for i in range(count) if i % test_every == 0]
    return [i for i in range(count) if i % test_every != 0], test


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation [3, 3] taking unit vector ``a`` to unit vector ``b`` (Rodrigues)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1 + 1e-8:  # opposite: a half turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    skew = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + skew + skew @ skew / (1.0 + c)


def orient_and_scale(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cameras turned so their mean up vector is +Z, centred on their mean position and
    scaled so every camera lies in [-1, 1]^3; returns the poses and the 4x4 world map.

    As nerfstudio's ``auto_orient_and_center_poses(method="up", center_method="poses")``
    followed by its dataparsers' ``auto_scale_poses`` (nerfstudio/cameras/camera_utils.py).
    """
    centre = c2w[:, :3, 3].mean(axis=0)
    up = c2w[:, :3, 1].mean(axis=0)
    if np.linalg.norm(up) < 1e-9:
        up = np.array([0.0, 0.0, 1.0])
    world = np.eye(4)
    world[:3, :3] = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    world[:3, 3] = -world[:3, :3] @ centre
    poses = world @ c2w
    extent = float(np.abs(poses[:, :3, 3]).max())
    scale = 1.0 / extent if extent > 1e-9 else 1.0
    world = np.diag([scale, scale, scale, 1.0]) @ world
    poses[:, :3, 3] *= scale
    return poses, world


def frustum_box(
    c2w: np.ndarray, intrinsics: np.ndarray, width: int, height: int, near: float, far: float
) -> tuple[float, float, float, float, float, float]:
    """The axis-aligned box around every camera's centre and its view frustum from
    ``near`` to ``far`` (distances along the optical axis)."""
    points = [c2w[:, :3, 3]]
    for col, row in ((0, 0), (width, 0), (0, height), (width, height)):
        fx, fy, cx, cy = (intrinsics[:, i] for i in range(4))
        cam = np.stack([(col - cx) / fx, -(row - cy) / fy, -np.ones_like(fx)], axis=-1)
        rays = np.einsum("nij,nj->ni", c2w[:, :3, :3], cam)
        for depth in (near, far):
            points.append(c2w[:, :3, 3] + depth * rays)
    allp = np.concatenate(points)
    return (*allp.min(axis=0).tolist(), *allp.max(axis=0).tolist())  # type: ignore[return-value]


def undistort(images: torch.Tensor, intrinsics: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Undistort uint8 RGBA images [N, H, W, 4] with OpenCV's radial-tangential model.

    ``coeffs`` [N, 4] are ``(k1, k2, p1, p2)``; ``intrinsics`` [N, 4] ``(fx, fy, cx, cy)``
    in this project's pixel convention (pixel centres at +0.5) stay the same. Each output
    pixel is a point of the ideal pinhole camera; the distortion model maps it forward to
    where the lens imaged it, which is sampled bilinearly (edge pixels repeat outside the
    photo). No inversion is needed in this direction (OpenCV's ``initUndistortRectifyMap``
    builds its maps the same way).
    """
    out = images.clone()
    n, height, width = images.shape[:3]
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5,
        torch.arange(width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    for i in range(n):
        k1, k2, p1, p2 = coeffs[i].double().tolist()
        if k1 == k2 == p1 == p2 == 0.0:
            continue
        fx, fy, cx, cy = intrinsics[i].double().tolist()
        x, y = (cols - cx) / fx, (rows - cy) / fy  # OpenCV image axes: y points down
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        grid = torch.stack(
            [2.0 * (fx * xd + cx) / width - 1.0, 2.0 * (fy * yd + cy) / height - 1.0], -1
        )
        source = images[i].permute(2, 0, 1)[None].float()
        sampled = torch.nn.functional.grid_sample(
            source, grid[None].float(), mode="bilinear", padding_mode="border", align_corners=False
        )
        out[i] = sampled[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
    return out


def make_scene(
    images: torch.Tensor,
    c2w: np.ndarray,
    intrinsics: np.ndarray | None,
    focal: float,
    names: list[str],
    test_every: int,
    near: float,
    far: float,
    bounds: tuple[float, ...],
    name: str,
    split: tuple[list[int], list[int]] | None = None,
    measured: bool = False,
) -> SceneData:
    """A SceneData with ``train`` and (when any view is held out) ``test`` splits;
    ``measured``: near and far were measured on the content."""
    train, test = split if split is not None else hold_out(len(names), test_every)
    poses = torch.from_numpy(c2w).float()
    splits = {}
    for label, index in (("train", train), ("test", test)):
        if not index:
            continue
        ids = torch.tensor(index, dtype=torch.long)
        extras = {}
        if intrinsics is not None:
            extras[INTRINSICS] = torch.from_numpy(intrinsics[index]).float()
        splits[label] = Views(
            images=images[ids].contiguous(),
            c2w=poses[ids],
            focal=float(focal),
            names=[names[i] for i in index],
            extras=extras,
        )
    if not math.isfinite(near) or not math.isfinite(far) or not 0 < near < far:
        raise DataError(f"{name}: could not find a valid near/far range ({near}, {far})")
    box = tuple(float(b) for b in bounds)
    return SceneData(
        splits,
        near=float(near),
        far=float(far),
        bounds=box,
        name=name,  # type: ignore[arg-type]
        measured_depths=measured,
    )
