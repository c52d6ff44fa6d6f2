"""The ``dtu`` data kind: DTU scans in the IDR/VolSDF layout.

A scan folder holds ``image/*.png`` (sorted), optional ``mask/*.png`` (one per image,
same order) and ``cameras.npz`` with ``world_mat_i`` (P = K [R | t], 3x4 or 4x4) and
``scale_mat_i`` (4x4) for image i. As in IDR (Yariv et al. 2020), the projection of the
normalised scene is ``P = world_mat @ scale_mat``: the scale matrix maps the unit sphere
onto the object, so the object lies in the unit sphere of the loaded scene.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.api import (
    INTRINSICS,
    DataError,
    SceneData,
    Views,
    downscale_rgba,
    read_images,
    read_rgba,
)
from atlas_plugin_dtu.projection import (
    Camera,
    camera_to_world,
    core_intrinsics,
    decompose,
    invertible,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
WORLD_FROM_SCENE = "world_from_scene"
"""Views.extras key the core's mesh export reads: loaded frame -> the scan's world frame."""
MAX_SKEW_SHIFT = 0.1
"""Largest pixel shift that ignoring a camera's skew may cause (the core has no skew)."""


def image_files(folder: Path) -> list[Path]:
    """The sorted image files of a folder, or a DataError when there is none."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder is missing (a DTU scan has image/ and cameras.npz)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images (.png, .jpg)")
    return files


def read_cameras(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``cameras.npz``."""
    if not path.is_file():
        raise DataError(f"{path}: file is missing (a DTU scan has image/ and cameras.npz)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__})") from exc


def matrix(cameras: dict[str, np.ndarray], path: Path, key: str, image: Path) -> np.ndarray:
    """A finite numeric matrix ``key`` for ``image``, padded from 3x4 to 4x4."""
    if key not in cameras:
        raise DataError(f"{path}: no {key} for image {image.name}")
    value = cameras[key]
    if not np.issubdtype(value.dtype, np.number) or value.shape not in ((3, 4), (4, 4)):
        raise DataError(f"{path}: {key} must be a numeric 3x4 or 4x4 matrix, got {value.shape}")
    value = value.astype(np.float64)
    if not np.isfinite(value).all():
        raise DataError(f"{path}: {key} has NaN or Inf")
    if value.shape == (3, 4):
        value = np.concatenate([value, [[0.0, 0.0, 0.0, 1.0]]])
    return value


def view_camera(
    cameras: dict[str, np.ndarray], path: Path, index: int, image: Path, height: int
) -> Camera:
    """The normalised camera of image ``index``: ``world_mat_i @ scale_mat_i`` decomposed."""
    world = matrix(cameras, path, f"world_mat_{index}", image)
    scale = matrix(cameras, path, f"scale_mat_{index}", image)
    if not invertible(scale):
        raise DataError(f"{path}: scale_mat_{index} is not invertible")
    try:
        camera = decompose((world @ scale)[:3])
    except ValueError as exc:
        raise DataError(f"{path}: world_mat_{index} @ scale_mat_{index}: {exc}") from exc
    skew = camera.K[0, 1]
    if abs(skew) * height / camera.K[1, 1] > MAX_SKEW_SHIFT:
        raise DataError(
            f"{path}: world_mat_{index} has camera skew {skew:.3g}, which the core's pinhole "
            f"cameras cannot represent (more than {MAX_SKEW_SHIFT} pixel of error)"
        )
    return camera


def mask_alpha(folder: Path, images: list[Path], shape: tuple[int, ...]) -> list[np.ndarray]:
    """Masks as alpha [H, W] uint8: brightest RGB channel of each mask, in image order."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) != len(images):
        raise DataError(
            f"{folder}: {len(files)} masks for {len(images)} images in {images[0].parent}"
        )
    alphas = []
    for file in files:
        mask = read_rgba(file)
        if mask.shape[:2] != shape[:2]:
            raise DataError(
                f"{file}: mask size {mask.shape[1]}x{mask.shape[0]} differs from the "
                f"{shape[1]}x{shape[0]} images"
            )
        alphas.append(mask[:, :, :3].max(axis=2))
    return alphas


def mask_folder(root: Path, use_mask: bool | None) -> Path | None:
    """The mask folder to read: ``use_mask`` None reads it when present."""
    folder = root / "mask"
    if use_mask is False:
        return None
    if not folder.is_dir():
        if use_mask:
            raise DataError(f"{folder}: folder is missing (data.use_mask=true needs masks)")
        return None
    return folder


def split_indices(count: int, test_every: int, where: Path) -> dict[str, list[int]]:
    """Train and test views: every ``test_every``-th view (0, k, 2k, ...) is a test view."""
    if test_every == 0:
        return {"train": list(range(count))}
    test = [i for i in range(count) if i % test_every == 0]
    train = [i for i in range(count) if i % test_every != 0]
    if not train:
        raise DataError(
            f"{where}: {count} image(s) with data.test_every={test_every} leave no training view"
        )
    return {"train": train, "test": test}


def ray_range(centres: np.ndarray, bound: float) -> tuple[float, float]:
    """Near and far that bracket the box ``[-bound, bound]^3`` from every camera centre."""
    distances = np.linalg.norm(centres, axis=1)
    reach = math.sqrt(3.0) * bound
    near = max(float(distances.min()) - reach, 1e-3)
    return near, float(distances.max()) + reach


def check_options(
    downscale: int, near: float | None, far: float | None, bound: float, test_every: int
) -> None:
    """Option values a scan cannot be loaded with raise ValueError."""
    if downscale < 1:
        raise ValueError(f"data.downscale must be >= 1, got {downscale}")
    if not bound > 0:
        raise ValueError(f"data.bound must be > 0, got {bound}")
    if test_every < 0 or test_every == 1:
        raise ValueError(f"data.test_every must be 0 (no test split) or >= 2, got {test_every}")
    if near is not None and not near > 0:
        raise ValueError(f"data.near must be > 0, got {near}")
    if near is not None and far is not None and not near < far:
        raise ValueError(f"need data.near < data.far, got near={near}, far={far}")


def load_dtu(
    path: str | Path,
    downscale: int = 1,
    near: float | None = None,
    far: float | None = None,
    bound: float = 1.1,
    test_every: int = 8,
    use_mask: bool | None = None,
    cameras: str = "cameras.npz",
) -> SceneData:
    """Load a DTU scan; near/far default to the range that brackets the box from every camera."""
    check_options(downscale, near, far, bound, test_every)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    files = image_files(root / "image")
    camera_path = root / cameras
    arrays = read_cameras(camera_path)
    images = np.stack(read_images(files))
    height, width = images.shape[1:3]
    views = [view_camera(arrays, camera_path, i, f, height) for i, f in enumerate(files)]
    scales = np.stack(
        [matrix(arrays, camera_path, f"scale_mat_{i}", f) for i, f in enumerate(files)]
    )
    masks = mask_folder(root, use_mask)
    if masks is not None:
        images[..., 3] = np.stack(mask_alpha(masks, files, images.shape[1:]))
    if downscale > min(height, width):
        raise DataError(f"{root / 'image'}: downscale {downscale} is larger than the images")
    stack = downscale_rgba(torch.from_numpy(images), downscale)
    intrinsics = np.stack([core_intrinsics(v) for v in views]) / downscale
    c2w = np.stack([camera_to_world(v) for v in views])
    low, high = ray_range(c2w[:, :3, 3], bound)
    near = low if near is None else near
    far = high if far is None else far
    if not near < far:
        raise ValueError(f"need data.near < data.far, got near={near}, far={far}")
    splits = {}
    for name, indices in split_indices(len(files), test_every, root / "image").items():
        splits[name] = make_views(stack, c2w, intrinsics, files, indices, scales)
    b = float(bound)
    return SceneData(splits, near=near, far=far, bounds=(-b, -b, -b, b, b, b), name=root.name)


def make_views(
    images: torch.Tensor, c2w: np.ndarray, intrinsics: np.ndarray, files: list[Path],
    indices: list[int], scales: np.ndarray | None = None,
) -> Views:  # fmt: skip
    """One split's Views; ``focal`` (for free cameras) is the mean of sqrt(fx * fy).

    ``scales`` [N, 4, 4] (the scan's ``scale_mat_i``) go into ``extras`` as
    ``WORLD_FROM_SCENE``, so ``atlas export`` can write meshes in the scan's world frame.
    """
    chosen = intrinsics[indices]
    extras: dict[str, Any] = {INTRINSICS: torch.from_numpy(chosen).float()}
    if scales is not None:
        extras[WORLD_FROM_SCENE] = torch.from_numpy(scales[indices]).float()
    return Views(
        images=images[indices].contiguous(),
        c2w=torch.from_numpy(c2w[indices]).float(),
        focal=float(np.sqrt(chosen[:, 0] * chosen[:, 1]).mean()),
        names=[files[i].stem for i in indices],
        extras=extras,
    )
