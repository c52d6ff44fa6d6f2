"""nerfstudio / instant-ngp scenes: one ``transforms.json`` (docs.nerf.studio, "Data
conventions"; instant-ngp's docs/nerf_dataset_tips.md).

Intrinsics ``fl_x, fl_y, cx, cy, w, h`` (or ``camera_angle_x``) and the OPENCV lens
``k1, k2, p1, p2`` are shared at the top level or given per frame. ``cx, cy`` count from
the image's top-left corner with pixel centres at +0.5, as ours do (nerfstudio adds 0.5
to pixel indices before subtracting them), so they are used unchanged. Lens distortion
is removed from the images (``real.undistort``: each ideal pinhole pixel is mapped
through the OPENCV model and sampled bilinearly), so rays stay pinhole rays.
``transform_matrix`` is camera-to-world in OpenGL axes; the cameras are oriented,
centred and scaled as nerfstudio does (``real.orient_and_scale``).

Frames whose image is missing are skipped with one warning giving their count, as
instant-ngp does. Splits: nerfstudio's ``train_filenames``/``test_filenames`` when
present, else every ``test_every``-th frame (in file order) is a test view.

The box: instant-ngp's ``aabb_scale`` (its scene is the unit cube ``[0, 1]^3`` of
``p * scale + offset``, axes permuted (y, z, x) as in its ``nerf_matrix_to_ngp``;
defaults ``scale = 0.33``, ``offset = 0.5``; the box is that cube enlarged
``aabb_scale`` times about its centre), taken through our normalisation; without it,
``[-1, 1]^3`` around the cameras (nerfstudio's default scene box). Near is 0.05 (nerfstudio's
default near plane); far reaches the box's farthest corner from any camera.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.data.blender import image_file, parse_frames, parse_pose, read_json, short
from atlas_core.data.real import (
    check_folder,
    check_options,
    load_pixels,
    make_scene,
    orient_and_scale,
    undistort,
)
from atlas_core.data.scene import SceneData
from atlas_core.errors import DataError, warn

__all__ = ["NGP_OFFSET", "NGP_SCALE", "frame_camera", "load_nerfstudio", "ngp_box"]

NGP_SCALE, NGP_OFFSET = 0.33, 0.5  # instant-ngp's defaults (src/testbed_nerf.cu)
DISTORTION = ("k1", "k2", "p1", "p2")
MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")


def _number(path: Path, where: str, key: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{path}: {where}{key} must be a finite number, got {short(value)}")
    if positive and value <= 0:
        raise DataError(f"{path}: {where}{key} must be > 0, got {value!r}")
    return float(value)


def frame_camera(path: Path, meta: dict, frame: dict, index: int) -> tuple[list, list, tuple]:
    """A frame's ``[fx, fy, cx, cy]``, ``[k1, k2, p1, p2]`` and ``(w, h)`` (None when
    absent), each key from the frame, else the top level."""
    where = f"frame {index}: "

    def get(key: str) -> Any:
        return frame.get(key, meta.get(key))

    width, height = get("w"), get("h")
    width = None if width is None else _number(path, where, "w", width, positive=True)
    height = None if height is None else _number(path, where, "h", height, positive=True)
    model = get("camera_model") or "OPENCV"
    if model not in MODELS:
        raise DataError(
            f"{path}: {where}camera_model {short(model)} is not supported "
            f"(supported: {', '.join(MODELS)})"
        )
    for key in ("k3", "k4"):
        if get(key):
            raise DataError(f"{path}: {where}{key} is not supported (OPENCV takes k1 k2 p1 p2)")
    fx = get("fl_x")
    if fx is None:
        angle = get("camera_angle_x")
        if angle is None or width is None:
            raise DataError(f"{path}: {where}no focal length (fl_x, or camera_angle_x with w)")
        angle = _number(path, where, "camera_angle_x", angle, positive=True)
        fx = 0.5 * width / math.tan(0.5 * angle)
    fx = _number(path, where, "fl_x", fx, positive=True)
    fy = (
        _number(path, where, "fl_y", get("fl_y"), positive=True)
        if "fl_y" in frame or "fl_y" in meta
        else fx
    )
    cx, cy = get("cx"), get("cy")
    cx = None if cx is None else _number(path, where, "cx", cx)
    cy = None if cy is None else _number(path, where, "cy", cy)
    coeffs = [_number(path, where, k, get(k) or 0.0) for k in DISTORTION]
    return [fx, fy, cx, cy], coeffs, (width, height)


def ngp_box(path: Path, meta: dict, world: np.ndarray) -> np.ndarray | None:
    """instant-ngp's box [2, 3] taken into the normalised world, or None without aabb_scale."""
    if "aabb_scale" not in meta:
        return None
    aabb = _number(path, "", "aabb_scale", meta["aabb_scale"], positive=True)
    scale = _number(path, "", "scale", meta.get("scale", NGP_SCALE), positive=True)
    try:
        offset = np.broadcast_to(np.asarray(meta.get("offset", NGP_OFFSET), np.float64), (3,))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: offset must be a number or 3 numbers") from exc
    if not np.isfinite(offset).all():
        raise DataError(f"{path}: offset must be finite")
    # ngp = (y, z, x) * scale + offset: the cube's centre 0.5 back in our axes
    centre = (0.5 - offset[[2, 0, 1]]) / scale
    half = 0.5 * aabb / scale
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    points = (centre + half * corners) @ world[:3, :3].T + world[:3, 3]
    return np.stack([points.min(axis=0), points.max(axis=0)])


def load_nerfstudio(path: str | Path, downscale: int = 1, test_every: int = 8) -> SceneData:
    """Load a ``transforms.json`` folder; ``downscale`` reads ``images_N/`` when it exists."""
    root = check_folder(path)
    check_options(root, downscale, test_every)
    source = root / "transforms.json"
    meta = read_json(source)
    frames = parse_frames(source, meta)
    small = root / f"images_{downscale}"
    use_small = downscale > 1 and small.is_dir()
    kept, files, missing = [], [], 0
    for i, frame in enumerate(frames):
        file = image_file(root, source, i, frame["file_path"])
        if use_small:
            file = small / file.name
        if not file.is_file():
            missing += 1
            continue
        kept.append(i)
        files.append(file)
    if not kept:
        raise DataError(f"{source}: none of its {len(frames)} frames has an image file")
    if missing:
        warn(f"{source}: {missing} of {len(frames)} frames have no image file; skipped them")
    cams = [frame_camera(source, meta, frames[i], i) for i in kept]
    poses = np.stack([parse_pose(source, i, frames[i]["transform_matrix"]) for i in kept])
    images = load_pixels(files, 1 if use_small else downscale)
    height, width = images.shape[1:3]
    intrinsics, coeffs = [], []
    for (fx, fy, cx, cy), k, (w, h) in cams:
        # sizes in the file are the original images'; ours may be downscaled
        sx = width / w if w else 1.0 / downscale
        sy = height / h if h else sx
        full_w, full_h = w or width / sx, h or height / sy
        cx = 0.5 * full_w if cx is None else cx
        cy = 0.5 * full_h if cy is None else cy
        intrinsics.append([fx * sx, fy * sy, cx * sx, cy * sy])
        coeffs.append(k)
    intrinsics = np.array(intrinsics)
    images = undistort(images, torch.from_numpy(intrinsics), torch.tensor(coeffs))
    c2w, world = orient_and_scale(poses)
    box = ngp_box(source, meta, world)
    if box is None:
        box = np.stack([np.full(3, -1.0), np.full(3, 1.0)])
    corners = np.array(
        [[box[a, 0], box[b, 1], box[c, 2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    )
    far = float(np.linalg.norm(corners[None] - c2w[:, None, :3, 3], axis=-1).max())
    names = [Path(files[j]).stem for j in range(len(kept))]
    split = file_split(source, meta, [frames[i]["file_path"] for i in kept])
    focal = float(np.sqrt(intrinsics[0, 0] * intrinsics[0, 1]))
    bounds = (*box[0].tolist(), *box[1].tolist())
    return make_scene(
        images, c2w, intrinsics, focal, names, test_every, 0.05, far, bounds, root.name, split
    )


def file_split(source: Path, meta: dict, paths: list[str]) -> tuple[list[int], list[int]] | None:
    """nerfstudio's own split (``train_filenames``, ``test_filenames``), or None."""
    if "train_filenames" not in meta and "test_filenames" not in meta:
        return None
    norm = [str(Path(p)) for p in paths]

    def listed(key: str) -> set[str]:
        names = meta.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{source}: {key} must be a list of file paths")
        return {str(Path(n)) for n in names}

    test = listed("test_filenames")
    train = listed("train_filenames") if "train_filenames" in meta else set(norm) - test
    split = (
        [i for i, p in enumerate(norm) if p in train],
        [i for i, p in enumerate(norm) if p in test],
    )
    if not split[0]:
        raise DataError(f"{source}: train_filenames names none of the frames with images")
    return split
