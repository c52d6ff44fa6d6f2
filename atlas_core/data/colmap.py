"""COLMAP scenes: a sparse model in ``sparse/0/`` (or ``sparse/``), binary or text, with
the photos in ``images/`` (``images_N/`` for ``data.downscale N`` when it exists).

Poses: COLMAP stores world-to-camera ``[R | t]`` in OpenCV axes; the camera-to-world is
``[R^T | -R^T t]``, and flipping its Y and Z columns gives our OpenGL camera. The
cameras are then oriented, centred and scaled as nerfstudio does (``real.orient_and_scale``:
mean up vector to +Z, mean position at the origin, every camera inside [-1, 1]^3).
Intrinsics per view go to ``Views.extras[INTRINSICS]``; COLMAP puts the centre of the
first pixel at (0.5, 0.5), as we do, so ``cx, cy`` are used as they are. Radial and
OpenCV lenses are undistorted in the images (``real.undistort``); other models are refused.
Near and far come from the sparse points each image sees (their 0.1th and 99.9th
depth percentiles, as LLFF's ``imgs2poses``/``pose_utils.save_poses`` computes its
bounds, then ``0.9 * min`` and ``max`` as the NeRF loader does); the box holds the cameras
and the points between their 1st and 99th percentiles per axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from atlas_core.data.colmap_model import Camera, Model, find_model, read_model
from atlas_core.data.real import (
    OPENGL_FROM_OPENCV,
    check_folder,
    check_options,
    load_pixels,
    make_scene,
    orient_and_scale,
    pick_folder,
    undistort,
)
from atlas_core.data.scene import SceneData
from atlas_core.errors import DataError
from atlas_core.nerf.cameras import quaternion_to_rotation

__all__ = ["SUPPORTED_MODELS", "camera_intrinsics", "load_colmap", "scene_range"]

SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


def camera_intrinsics(where: Path, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """``(fx, fy, cx, cy)`` and OpenCV ``(k1, k2, p1, p2)`` of a supported camera."""
    p = camera.params
    if camera.model == "SIMPLE_PINHOLE":
        return np.array([p[0], p[0], p[1], p[2]]), np.zeros(4)
    if camera.model == "PINHOLE":
        return p[:4].copy(), np.zeros(4)
    if camera.model == "SIMPLE_RADIAL":
        return np.array([p[0], p[0], p[1], p[2]]), np.array([p[3], 0.0, 0.0, 0.0])
    if camera.model == "RADIAL":
        return np.array([p[0], p[0], p[1], p[2]]), np.array([p[3], p[4], 0.0, 0.0])
    if camera.model == "OPENCV":
        return p[:4].copy(), p[4:8].copy()
    raise DataError(
        f"{where}: camera {camera.id} uses model {camera.model}, which is not supported "
        f"(supported: {', '.join(SUPPORTED_MODELS)})"
    )


def scene_range(
    model: Model, order: list[int], c2w: np.ndarray, world: np.ndarray
) -> tuple[float, float, np.ndarray] | None:
    """Near, far and the points' box [2, 3] in the normalised world, or None without points."""
    if len(model.points) == 0:
        return None
    points = model.points @ world[:3, :3].T + world[:3, 3]
    index = {int(pid): i for i, pid in enumerate(model.point_ids)}
    close, distant = [], []
    for view, iid in enumerate(order):
        seen = [index[p] for p in model.images[iid].point3d_ids.tolist() if p in index]
        pts = points[seen] if seen else points
        depth = (pts - c2w[view, :3, 3]) @ -c2w[view, :3, 2]  # along the optical axis
        depth = depth[depth > 0]
        if len(depth):
            close.append(np.percentile(depth, 0.1))
            distant.append(np.percentile(depth, 99.9))
    if not close:
        return None
    box = np.percentile(points, [1, 99], axis=0)
    return 0.9 * float(min(close)), float(max(distant)), box


def load_colmap(path: str | Path, downscale: int = 1, test_every: int = 8) -> SceneData:
    """Load a COLMAP folder; views sorted by image name, every ``test_every``-th held out."""
    root = check_folder(path)
    check_options(root, downscale, test_every)
    folder = find_model(root)
    if folder is None:
        raise DataError(f"{root / 'sparse' / '0'}: no COLMAP model (cameras.bin or cameras.txt)")
    model = read_model(folder)
    if not model.images:
        raise DataError(f"{folder}: the model has no registered images")
    cams_file = folder / ("cameras.bin" if (folder / "cameras.bin").is_file() else "cameras.txt")
    order = sorted(model.images, key=lambda iid: model.images[iid].name)
    image_dir, factor = pick_folder(root, downscale)
    files, intr, coeffs, poses = [], [], [], []
    for iid in order:
        image = model.images[iid]
        camera = model.cameras[image.camera_id]
        k, d = camera_intrinsics(cams_file, camera)
        intr.append(k / np.array([camera.width, camera.height, camera.width, camera.height]))
        coeffs.append(d)
        files.append(image_dir / image.name)
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = quaternion_to_rotation(image.qvec), image.tvec
        poses.append(np.linalg.inv(w2c) @ OPENGL_FROM_OPENCV)
    images = load_pixels(files, factor)
    height, width = images.shape[1:3]
    intrinsics = np.stack(intr) * np.array([width, height, width, height])
    images = undistort(images, torch.from_numpy(intrinsics), torch.from_numpy(np.stack(coeffs)))
    c2w, world = orient_and_scale(np.stack(poses))
    found = scene_range(model, order, c2w, world)
    centres = c2w[:, :3, 3]
    if found is None:  # no points: the cameras' box, as nerfstudio's default scene box
        near, far = 0.05, 2.0 * np.sqrt(3.0)
        low, high = np.full(3, -1.0), np.full(3, 1.0)
    else:
        near, far, box = found
        low = np.minimum(box[0], centres.min(axis=0))
        high = np.maximum(box[1], centres.max(axis=0))
    names = [Path(model.images[iid].name).stem for iid in order]
    focal = float(np.sqrt(intrinsics[0, 0] * intrinsics[0, 1]))
    bounds = (*low.tolist(), *high.tolist())
    return make_scene(
        images,
        c2w,
        intrinsics,
        focal,
        names,
        test_every,
        near,
        far,
        bounds,
        root.name,
        measured=found is not None,
    )
