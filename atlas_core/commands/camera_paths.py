"""Camera paths to render: through the training cameras, or from nerfstudio's camera_path.json.

``interpolate`` runs smoothly through the cameras in their order (positions on a
Catmull-Rom spline, rotations by quaternion slerp), the path a forward-facing capture
(LLFF) is best seen along; ``forward_spiral`` circles twice around the mean camera in
the cameras' own plane, as NeRF's ``render_path_spiral`` shows forward-facing scenes.
A ``camera_path.json`` is the file nerfstudio's viewer writes: ``render_width``,
``render_height``, ``fps`` and ``camera_path``, a list of ``{"camera_to_world": 16
numbers, row-major, "fov": vertical degrees}``, in the scene's world frame with the
OpenGL camera convention used here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from atlas_core.data.llff import average_pose
from atlas_core.errors import AtlasError
from atlas_core.io import atomic_write_json
from atlas_core.nerf.cameras import quaternion_to_rotation, rotation_to_quaternion

__all__ = [
    "CameraPath",
    "forward_spiral",
    "interpolate",
    "read_camera_path",
    "write_camera_path",
]


@dataclass
class CameraPath:
    """Poses [F, 4, 4] and per-frame focal lengths (pixels) at one image size."""

    poses: Tensor
    focals: list[float]
    width: int
    height: int
    fps: float


def _slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical linear interpolation of unit quaternions (Shoemake 1985), shortest arc."""
    dot = float(torch.dot(a, b))
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly equal: linear, renormalised
        q = a + t * (b - a)
        return q / q.norm()
    angle = math.acos(dot)
    return (math.sin((1 - t) * angle) * a + math.sin(t * angle) * b) / math.sin(angle)


def _catmull_rom(p0: Tensor, p1: Tensor, p2: Tensor, p3: Tensor, t: float) -> Tensor:
    """Uniform Catmull-Rom spline between p1 (t=0) and p2 (t=1)."""
    t2, t3 = t * t, t * t * t
    return 0.5 * (
        2 * p1
        + (p2 - p0) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
        + (3 * p1 - p0 - 3 * p2 + p3) * t3
    )


def interpolate(c2w: Tensor, frames: int) -> Tensor:
    """``frames`` poses [F, 4, 4] running smoothly through every camera in ``c2w`` in order.

    The path passes through camera ``i`` at frame ``i * (frames - 1) / (N - 1)``.
    """
    poses = c2w.double()
    count = len(poses)
    if count == 1 or frames == 1:
        return poses[:1].expand(frames, 4, 4).float().clone()
    eyes = poses[:, :3, 3]
    quats = [torch.from_numpy(rotation_to_quaternion(pose[:3, :3].numpy())) for pose in poses]
    out = []
    for f in range(frames):
        u = f * (count - 1) / (frames - 1)
        i = min(int(u), count - 2)
        t = u - i
        ends = [max(i - 1, 0), i, i + 1, min(i + 2, count - 1)]
        eye = _catmull_rom(*(eyes[k] for k in ends), t)
        pose = torch.eye(4, dtype=torch.float64)
        pose[:3, :3] = torch.from_numpy(
            quaternion_to_rotation(_slerp(quats[i], quats[i + 1], t).numpy())
        )
        pose[:3, 3] = eye
        out.append(pose)
    return torch.stack(out).float()


def forward_spiral(c2w: Tensor, frames: int, turns: int = 2) -> Tensor:
    """``frames`` poses [F, 4, 4] on a closed spiral around the mean camera of a
    forward-facing capture, all facing the mean direction.

    Offsets in the mean camera's axes are ``(r_x cos a, r_y sin a, r_z sin(a / turns))``
    for ``a`` over ``turns`` full circles, with ``r`` the 90th percentile of the cameras'
    offsets per axis (the radii of NeRF's ``render_path_spiral``, Mildenhall et al. 2020;
    without a focus depth the orientation stays the mean camera's).
    """
    poses = c2w.double()
    mean = torch.from_numpy(average_pose(poses.cpu().numpy()))
    local = (poses[:, :3, 3] - mean[:3, 3]) @ mean[:3, :3]
    radii = torch.quantile(local.abs(), 0.9, dim=0)
    out = []
    for f in range(frames):
        angle = 2.0 * math.pi * turns * f / max(frames, 1)
        wave = torch.tensor(
            [math.cos(angle), math.sin(angle), math.sin(angle / turns)], dtype=torch.float64
        )
        pose = mean.clone()
        pose[:3, 3] = mean[:3, 3] + mean[:3, :3] @ (radii * wave)
        out.append(pose)
    return torch.stack(out).float() if out else torch.zeros(0, 4, 4)


def read_camera_path(path: Path) -> CameraPath:
    """Read nerfstudio's camera_path.json; a malformed file is an AtlasError naming it."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise AtlasError(f"{path}: camera path file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AtlasError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("camera_path"), list):
        raise AtlasError(f"{path}: no 'camera_path' list (nerfstudio's camera_path.json)")
    kind = raw.get("camera_type", "perspective")
    if kind != "perspective":
        raise AtlasError(f"{path}: camera_type '{kind}' is not supported; use perspective")
    try:
        width, height = int(raw["render_width"]), int(raw["render_height"])
        fps = float(raw.get("fps", 24))
        poses, focals = [], []
        for k, camera in enumerate(raw["camera_path"]):
            matrix = torch.tensor(camera["camera_to_world"], dtype=torch.float64).reshape(4, 4)
            fov = math.radians(float(camera["fov"]))
            if not 0 < fov < math.pi:
                raise ValueError(f"camera {k}: fov {camera['fov']} is not in (0, 180) degrees")
            poses.append(matrix)
            focals.append(0.5 * height / math.tan(0.5 * fov))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise AtlasError(f"{path}: bad camera path: {exc}") from exc
    if not poses:
        raise AtlasError(f"{path}: the camera path has no cameras")
    if width < 1 or height < 1:
        raise AtlasError(f"{path}: render size {width}x{height} must be positive")
    return CameraPath(torch.stack(poses).float(), focals, width, height, fps)


def write_camera_path(path: Path, camera: CameraPath) -> Path:
    """Write a camera path in nerfstudio's camera_path.json format."""
    frames = [
        {
            "camera_to_world": pose.double().reshape(-1).tolist(),
            "fov": math.degrees(2 * math.atan(0.5 * camera.height / focal)),
            "aspect": camera.width / camera.height,
        }
        for pose, focal in zip(camera.poses, camera.focals, strict=True)
    ]
    atomic_write_json(
        Path(path),
        {
            "camera_type": "perspective",
            "render_width": camera.width,
            "render_height": camera.height,
            "fps": camera.fps,
            "seconds": len(frames) / camera.fps,
            "camera_path": frames,
        },
    )
    return Path(path)
