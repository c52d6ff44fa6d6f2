"""The ``nerv_point`` data kind: NeRF-synthetic scenes whose frames carry point lights.

Layouts: ``transforms_{split}.json`` at the scene root, or NeRV's sub-folders
``{split}_point/`` holding ``transforms_{split}.json`` (or ``transforms.json``) with
paths relative to that folder. Each frame may give ``light_loc`` (one [x, y, z] or a
list of them), ``light_weights`` (RGB per light, default [1, 1, 1]) and
``light_intensity`` (a scalar; otherwise ``relight.light_intensity`` scales it). When no
frame gives ``light_loc`` the light is collocated with each camera. Lights go into
``Views.extras`` so that every ray carries its image's lights. The JSON's top-level
``encoding`` (``linear`` or ``srgb``) declares how the images encode light (see
``tonemap.declared_encoding``; ``images_encoding`` reads it for ``relight.tonemap=auto``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.api import (
    SPLITS,
    DataError,
    SceneData,
    Views,
    downscale_rgba,
    focal_from_fov,
    image_file,
    parse_fov,
    parse_frames,
    parse_pose,
    read_images,
    read_json,
    short,
)
from atlas_plugin_relight.lights import POSITIONS, POWER, SCALED
from atlas_plugin_relight.tonemap import declared_encoding, meta_encoding


def split_file(root: Path, split: str) -> Path | None:
    """The JSON file of a split in either layout, or None."""
    candidates = [
        root / f"transforms_{split}.json",
        root / f"{split}_point" / f"transforms_{split}.json",
        root / f"{split}_point" / "transforms.json",
    ]
    return next((path for path in candidates if path.is_file()), None)


def vectors(where: str, value: Any, name: str) -> np.ndarray:
    """One 3-vector or a non-empty list of them as a finite [L, 3] array."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {name} must be numbers, got {short(value)}") from exc
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise DataError(f"{where}: {name} must be [x, y, z] or a list of them, got {short(value)}")
    if not np.isfinite(array).all():
        raise DataError(f"{where}: {name} has NaN or Inf")
    return array


def frame_lights(where: str, frame: dict[str, Any], camera: np.ndarray, collocated: bool):
    """A frame's light positions [L, 3], RGB power [L, 3] and whether it gave an intensity."""
    if collocated:
        positions = camera[None]
    elif "light_loc" not in frame:
        raise DataError(f"{where}: missing key 'light_loc' (other frames of the split have one)")
    else:
        positions = vectors(where, frame["light_loc"], "light_loc")
    weights = np.ones_like(positions)
    if "light_weights" in frame:
        weights = vectors(where, frame["light_weights"], "light_weights")
        if weights.shape[0] == 1:
            weights = np.repeat(weights, positions.shape[0], axis=0)
        if weights.shape != positions.shape or (weights < 0).any():
            raise DataError(f"{where}: light_weights must be >= 0, one RGB per light_loc")
    intensity = frame.get("light_intensity")
    if intensity is not None:
        if (
            isinstance(intensity, bool)
            or not isinstance(intensity, (int, float))
            or not (math.isfinite(intensity) and intensity > 0)
        ):
            raise DataError(
                f"{where}: light_intensity must be a number > 0, got {short(intensity)}"
            )
        weights = weights * float(intensity)
    return positions, weights, intensity is not None


def images_encoding(root: str | Path) -> str:
    """How the training images of the scene at ``root`` encode light (``linear`` or
    ``srgb``, see ``tonemap.declared_encoding``); sRGB where there is no such scene, or
    one the loader will refuse."""
    file = split_file(Path(root), "train")
    if file is None:
        return "srgb"
    try:
        meta = read_json(file)
        first = image_file(file.parent, file, 0, parse_frames(file, meta)[0]["file_path"])
        return declared_encoding(file, meta, first)
    except (DataError, KeyError, TypeError, OSError):  # the loader names what is broken
        return "srgb"


def light_extras(path: Path, frames: list[dict[str, Any]], poses: list[np.ndarray]):
    """Per-view light tensors, padded to the split's most lights with zero power."""
    collocated = not any("light_loc" in frame for frame in frames)
    lights = [
        frame_lights(f"{path}: frame {i}", frame, pose[:3, 3], collocated)
        for i, (frame, pose) in enumerate(zip(frames, poses, strict=True))
    ]
    count = max(positions.shape[0] for positions, _, _ in lights)
    positions = np.zeros((len(frames), count, 3))
    power = np.zeros((len(frames), count, 3))
    for i, (p, w, _) in enumerate(lights):
        positions[i, : len(p)], positions[i, len(p) :] = p, p[0]
        power[i, : len(w)] = w
    scaled = np.array([float(given) for _, _, given in lights])
    as_tensor = lambda a: torch.from_numpy(a).float()  # noqa: E731
    return {POSITIONS: as_tensor(positions), POWER: as_tensor(power), SCALED: as_tensor(scaled)}


def load_views(path: Path, downscale: int) -> Views:
    """One split's views with their lights in ``extras``."""
    meta = read_json(path)
    fov = parse_fov(path, meta)
    frames = parse_frames(path, meta)
    poses = [parse_pose(path, i, frame["transform_matrix"]) for i, frame in enumerate(frames)]
    files = [image_file(path.parent, path, i, f["file_path"]) for i, f in enumerate(frames)]
    extras = light_extras(path, frames, poses)
    meta_encoding(path, meta)  # a bad declaration stops here, naming the file
    stack = torch.from_numpy(np.stack(read_images(files)))
    height, width = stack.shape[1:3]
    if downscale > min(height, width):
        raise DataError(f"{path}: downscale {downscale} is larger than the {width}x{height} images")
    stack = downscale_rgba(stack, downscale)
    focal = focal_from_fov(width, fov) * stack.shape[2] / width
    c2w = torch.from_numpy(np.stack(poses)).float()
    names = [file.stem for file in files]
    return Views(images=stack, c2w=c2w, focal=focal, names=names, extras=extras)


def load_nerv_point(
    path: str | Path, downscale: int = 1, near: float = 2.0, far: float = 6.0, bound: float = 1.5
) -> SceneData:
    """Load a NeRV point-light scene (either layout)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist or is not a folder")
    if downscale < 1 or not 0 < near < far or not bound > 0:
        raise DataError(f"{root}: need downscale >= 1, 0 < near < far and bound > 0")
    splits = {}
    for split in SPLITS:
        file = split_file(root, split)
        if file is not None:
            splits[split] = load_views(file, downscale)
    if "train" not in splits:
        raise DataError(
            f"{root}: no transforms_train.json (nor train_point/transforms_train.json): "
            "not a nerv_point scene"
        )
    b = float(bound)
    return SceneData(splits, near=near, far=far, bounds=(-b, -b, -b, b, b, b), name=root.name)
