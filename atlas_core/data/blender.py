"""NeRF-synthetic ("blender") scenes: ``transforms_{split}.json`` plus RGBA PNGs.

Every problem with the files is a DataError whose one-line message starts with the
file at fault.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.data.images import downscale_rgba, read_rgba
from atlas_core.data.scene import SceneData, Views
from atlas_core.errors import DataError, first_line
from atlas_core.nerf.cameras import focal_from_fov

__all__ = [
    "IMAGE_SUFFIXES",
    "OTHER_LAYOUTS",
    "SPLITS",
    "image_file",
    "load_blender",
    "load_split",
    "not_blender",
    "parse_fov",
    "parse_frames",
    "parse_pose",
    "read_images",
    "read_json",
    "short",
]

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr")
OTHER_LAYOUTS = {
    "transforms.json": "an Instant-NGP/nerfstudio scene (one transforms.json)",
    "poses_bounds.npy": "an LLFF scene (poses_bounds.npy)",
    "sparse": "a COLMAP reconstruction (sparse/)",
    "database.db": "a COLMAP project (database.db)",
}


def short(value: Any, limit: int = 40) -> str:
    """A value's repr cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing, malformed or non-object file raises DataError."""
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError too
        raise DataError(f"{path}: malformed JSON ({first_line(exc)})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(
            f"{path}: expected a JSON object at the top level, got {type(raw).__name__}"
        )
    return raw


def parse_pose(path: Path, index: int, matrix: Any) -> np.ndarray:
    """A finite, invertible 4x4 camera-to-world matrix from a frame, or a DataError."""
    where = f"{path}: frame {index}: transform_matrix"
    try:
        pose = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{where} is not a numeric 4x4 matrix") from exc
    if pose.shape != (4, 4):
        raise DataError(f"{where} must be 4x4, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise DataError(f"{where} has NaN or Inf")
    with np.errstate(all="ignore"):
        det = np.linalg.det(pose[:3, :3])
    if not abs(det) > 1e-12:
        raise DataError(f"{where} is degenerate (its 3x3 rotation part is singular)")
    return pose


def parse_fov(path: Path, meta: dict[str, Any]) -> float:
    """The horizontal field of view ``camera_angle_x`` in radians."""
    if "camera_angle_x" not in meta:
        raise DataError(f"{path}: missing key 'camera_angle_x'")
    fov = meta["camera_angle_x"]
    if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 0 < fov < math.pi:
        raise DataError(f"{path}: camera_angle_x must be a number in (0, pi), got {short(fov)}")
    return float(fov)


def parse_frames(path: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-empty list of frame objects, each with ``file_path`` and ``transform_matrix``."""
    if "frames" not in meta:
        raise DataError(f"{path}: missing key 'frames'")
    frames = meta["frames"]
    if not isinstance(frames, list):
        raise DataError(f"{path}: 'frames' must be a list, got {type(frames).__name__}")
    if not frames:
        raise DataError(f"{path}: 'frames' is empty: the split has no views")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DataError(f"{path}: frame {i} must be an object, got {type(frame).__name__}")
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise DataError(f"{path}: frame {i}: missing key '{key}'")
    return frames


def image_file(root: Path, path: Path, index: int, file_path: Any) -> Path:
    """The image a frame names: inside the scene folder, ``.png`` added when unsuffixed."""
    where = f"{path}: frame {index}: file_path"
    if not isinstance(file_path, str) or not file_path.strip():
        raise DataError(f"{where} must be a non-empty string, got {short(file_path)}")
    if not file_path.isprintable():
        raise DataError(f"{where} {short(file_path)} has control characters")
    base = os.path.normpath(root)
    full = os.path.normpath(os.path.join(base, file_path))
    if os.path.isabs(file_path) or os.path.commonpath([base, full]) != base or full == base:
        raise DataError(f"{where} {short(file_path)} points outside the scene folder")
    file = Path(full)
    if file.suffix.lower() not in IMAGE_SUFFIXES:
        file = file.with_name(file.name + ".png")
    return file


def read_images(files: list[Path]) -> list[np.ndarray]:
    """Images as uint8 RGBA, all of one size."""
    images: list[np.ndarray] = []
    for file in files:
        image = read_rgba(file)
        if images and image.shape != images[0].shape:
            raise DataError(
                f"{file}: image size {image.shape[1]}x{image.shape[0]} differs from "
                f"{images[0].shape[1]}x{images[0].shape[0]} of the other images"
            )
        images.append(image)
    return images


def load_split(root: Path, split: str, downscale: int) -> Views | None:
    """One split's views, or None when its JSON file does not exist."""
    path = root / f"transforms_{split}.json"
    if not path.exists():
        return None
    meta = read_json(path)
    fov = parse_fov(path, meta)
    frames = parse_frames(path, meta)
    poses = [parse_pose(path, i, frame["transform_matrix"]) for i, frame in enumerate(frames)]
    files = [image_file(root, path, i, frame["file_path"]) for i, frame in enumerate(frames)]
    images = read_images(files)
    stack = torch.from_numpy(np.stack(images))
    height, width = stack.shape[1:3]
    if downscale > min(height, width):
        raise DataError(f"{path}: downscale {downscale} is larger than the {width}x{height} images")
    if downscale > 1:
        stack = downscale_rgba(stack, downscale)
    focal = focal_from_fov(width, fov) * stack.shape[2] / width
    c2w = torch.from_numpy(np.stack(poses)).float()
    return Views(images=stack, c2w=c2w, focal=focal, names=[file.stem for file in files])


def not_blender(root: Path) -> DataError:
    """The error for a folder without ``transforms_train.json``, guessing what it is."""
    entries = {p.name for p in root.iterdir()}
    if not entries:
        return DataError(f"{root}: no transforms_train.json (the folder is empty)")
    for name, what in OTHER_LAYOUTS.items():
        if name in entries:
            return DataError(f"{root}: looks like {what}, not a blender (NeRF-synthetic) folder")
    return DataError(f"{root}: no transforms_train.json: not a blender (NeRF-synthetic) folder")


def load_blender(
    path: str | Path,
    downscale: int = 1,
    near: float = 2.0,
    far: float = 6.0,
    bound: float = 1.5,
) -> SceneData:
    """Load a NeRF-synthetic folder; ``downscale`` averages NxN pixel blocks."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a data folder")
    if downscale < 1:
        raise DataError(f"{root}: downscale must be >= 1, got {downscale}")
    if not 0 < near < far:
        raise DataError(f"{root}: need 0 < near < far, got near={near}, far={far}")
    if not bound > 0:
        raise DataError(f"{root}: bound must be > 0, got {bound}")
    if not (root / "transforms_train.json").exists():
        raise not_blender(root)
    splits = {}
    for split in SPLITS:
        views = load_split(root, split, downscale)
        if views is not None:
            splits[split] = views
    b = float(bound)
    return SceneData(splits, near=near, far=far, bounds=(-b, -b, -b, b, b, b), name=root.name)
