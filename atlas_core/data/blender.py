"""NeRF-synthetic ("blender") scenes: ``transforms_{split}.json`` plus RGBA PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.cameras import focal_from_fov
from atlas_core.data.images import downscale_rgba, read_rgba
from atlas_core.data.scene import SceneData, Views
from atlas_core.errors import DataError

SPLITS = ("train", "val", "test")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing, malformed or non-object file raises DataError."""
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return raw


def parse_pose(path: Path, index: int, matrix: Any) -> np.ndarray:
    """A finite 4x4 camera-to-world matrix from a frame, or a DataError."""
    try:
        pose = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: frame {index}: transform_matrix is not numeric") from exc
    if pose.shape != (4, 4):
        raise DataError(f"{path}: frame {index}: transform_matrix must be 4x4, got {pose.shape}")
    if not np.isfinite(pose).all():
        raise DataError(f"{path}: frame {index}: transform_matrix has NaN or Inf")
    return pose


def load_split(root: Path, split: str, downscale: int) -> Views | None:
    """One split's views, or None when its JSON file does not exist."""
    path = root / f"transforms_{split}.json"
    if not path.exists():
        return None
    meta = read_json(path)
    for key in ("camera_angle_x", "frames"):
        if key not in meta:
            raise DataError(f"{path}: missing key '{key}'")
    fov = meta["camera_angle_x"]
    if not isinstance(fov, (int, float)) or not 0 < fov < math.pi:
        raise DataError(f"{path}: camera_angle_x must be a number in (0, pi), got {fov!r}")
    frames = meta["frames"]
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{path}: 'frames' is empty or not a list")
    images, poses, names = [], [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise DataError(f"{path}: frame {i}: missing key 'file_path'")
        if "transform_matrix" not in frame:
            raise DataError(f"{path}: frame {i}: missing key 'transform_matrix'")
        file = root / str(frame["file_path"])
        if file.suffix.lower() not in (".png", ".jpg", ".jpeg", ".exr"):
            file = file.with_name(file.name + ".png")
        image = read_rgba(file)
        if images and image.shape != images[0].shape:
            raise DataError(
                f"{file}: image size {image.shape[1]}x{image.shape[0]} differs from "
                f"{images[0].shape[1]}x{images[0].shape[0]} of the other images"
            )
        images.append(image)
        poses.append(parse_pose(path, i, frame["transform_matrix"]))
        names.append(file.stem)
    stack = torch.from_numpy(np.stack(images))
    width = stack.shape[2]
    if downscale > 1:
        stack = downscale_rgba(stack, downscale)
    focal = focal_from_fov(width, float(fov)) * stack.shape[2] / width
    c2w = torch.from_numpy(np.stack(poses)).float()
    return Views(images=stack, c2w=c2w, focal=focal, names=names)


def load_blender(
    path: str | Path,
    downscale: int = 1,
    near: float = 2.0,
    far: float = 6.0,
    bound: float = 1.5,
) -> SceneData:
    """Load a NeRF-synthetic folder; ``downscale`` averages NxN pixel blocks."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    if downscale < 1:
        raise DataError(f"{root}: downscale must be >= 1, got {downscale}")
    if not 0 < near < far:
        raise DataError(f"{root}: need 0 < near < far, got near={near}, far={far}")
    if not (root / "transforms_train.json").exists():
        raise DataError(f"{root}: no transforms_train.json: not a blender (NeRF-synthetic) folder")
    splits = {}
    for split in SPLITS:
        views = load_split(root, split, downscale)
        if views is not None:
            splits[split] = views
    b = float(bound)
    return SceneData(splits, near=near, far=far, bounds=(-b, -b, -b, b, b, b), name=root.name)
