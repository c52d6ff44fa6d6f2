"""Camera paths around a scene, time sweeps, and video writing (mp4 through ffmpeg, or GIF)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import imageio.v2 as imageio
import numpy as np
import torch
from torch import Tensor

from atlas_core.commands.camera_paths import forward_spiral
from atlas_core.data.images import to_uint8
from atlas_core.data.real import rotation_between
from atlas_core.data.scene import SceneData, camera_rays
from atlas_core.data.scene_type import FORWARD_DEGREES, camera_stats
from atlas_core.errors import AtlasError
from atlas_core.nerf.cameras import look_at

if TYPE_CHECKING:
    from atlas_core.nerf.pipeline import Pipeline

__all__ = ["PATHS", "looks_one_way", "orbit", "render_over_time", "up_frame", "write_video"]

PATHS = ("orbit", "turntable", "spiral", "interpolate")  # or a camera_path.json file


def looks_one_way(c2w: Tensor) -> bool:
    """True when every camera looks within ``FORWARD_DEGREES`` of the mean direction (a
    forward-facing capture: circling the origin would show what no camera saw)."""
    return len(c2w) > 1 and camera_stats(c2w.double().cpu().numpy()).max_angle <= FORWARD_DEGREES


def up_frame(c2w: Tensor) -> Tensor:
    """Rotation [3, 3] whose third column is the cameras' mean up vector when that is more
    than 45 degrees from +Z (e.g. LLFF's recentred frame, +Y up), else the identity."""
    up = c2w[:, :3, 1].double().mean(dim=0)
    if float(up.norm()) < 1e-6 or float(up[2] / up.norm()) > math.cos(math.radians(45)):
        return torch.eye(3, dtype=torch.float64)
    turn = rotation_between(np.array([0.0, 0.0, 1.0]), up.cpu().numpy())
    return torch.from_numpy(turn)


def orbit(c2w: Tensor, frames: int, path: str = "turntable") -> Tensor:
    """Camera-to-world matrices [F, 4, 4] circling the origin at the cameras' mean
    radius and elevation (``orbit`` or ``turntable``) about their up axis (``up_frame``);
    ``spiral`` also swings the elevation up and down. Cameras that all look one way
    (forward-facing) get ``forward_spiral`` around their mean camera instead."""
    if looks_one_way(c2w):
        return forward_spiral(c2w, frames)
    turn = up_frame(c2w)
    eyes = c2w[:, :3, 3].double() @ turn  # coordinates with the up axis as z
    radius = float(eyes.norm(dim=-1).mean())
    elevation = float(torch.asin((eyes[:, 2] / eyes.norm(dim=-1)).clamp(-1, 1)).mean())
    poses = []
    for i in range(frames):
        azimuth = 2 * math.pi * i / max(frames, 1)
        elev = elevation
        if path == "spiral":
            elev = elevation + math.radians(15) * math.sin(2 * azimuth)
            elev = max(min(elev, math.radians(85)), math.radians(-85))
        eye = torch.tensor(
            [
                radius * math.cos(elev) * math.cos(azimuth),
                radius * math.cos(elev) * math.sin(azimuth),
                radius * math.sin(elev),
            ],
            dtype=torch.float64,
        )
        poses.append(look_at(turn @ eye, torch.zeros(3, dtype=torch.float64), turn[:, 2]))
    return torch.stack(poses).float()


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Write frames as mp4 (H.264, sizes padded to even) or GIF by the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        imageio.mimwrite(path, frames, duration=1000 / fps, loop=0)
        return path
    padded = []
    for frame in frames:
        h, w = frame.shape[:2]
        padded.append(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    imageio.mimwrite(path, padded, fps=fps, macro_block_size=1, codec="libx264", quality=8)
    return path


def render_over_time(
    pipeline: Pipeline, scene: SceneData, camera: int, frames: int, chunk: int
) -> list[np.ndarray]:
    """Frames of test camera ``camera`` fixed while time sweeps evenly over [0, 1].

    For dynamic scenes (rays carry their time); a static field gives a still video.
    """
    views = scene.split("test")
    if not 0 <= camera < len(views):
        raise AtlasError(f"--camera {camera}: the test split has cameras 0..{len(views) - 1}")
    device = next(pipeline.parameters()).device
    c2w = views.c2w[camera].to(device)
    rays = camera_rays(c2w, views.focal, views.width, views.height, scene)
    was_training = pipeline.training
    pipeline.eval()
    images = []
    for time in torch.linspace(0.0, 1.0, frames).tolist():
        rays.times = torch.full((len(rays), 1), time, device=device)
        rgb = pipeline.render(rays, chunk)["rgb"]
        images.append(to_uint8(rgb.view(views.height, views.width, 3)))
    pipeline.train(was_training)
    return images
