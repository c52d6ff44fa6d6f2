"""The realistic generated point-light scene: :mod:`atlas_core.data.realistic` under
moving and collocated point lights, in the ``nerv_point`` layout.

``atlas data synth OUT --kind nerv_point --size 128`` (or more) writes it: training views
on the core's spiral (10-75 degrees of elevation, so the plate is seen only from above),
every other one lit by a light at the camera (collocated) and the rest by lights moving
over the upper hemisphere; test views on a ring lit by held-out light positions. No
ambient light: shadows are black, as under one point light. Alpha marks the objects and
the plate. ``truth.npz`` holds true surface points, the ground plane and the objects' size
(as the ``dtu`` plugin's realistic scan does). Written under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from atlas_core.api import focal_from_fov, linear_to_srgb, pixel_rays, realistic, synth

__all__ = ["INTENSITY", "VIEWS", "render_point", "write_realistic_point"]

INTENSITY = 12.0
LIGHT_RADIUS = 3.0
VIEWS = {"train": 60, "test": 8}


def render_point(  # noqa: ANN201
    c2w: np.ndarray, light: np.ndarray, size: int, supersample: int = 2, encoding: str = "linear"
):
    """One RGBA uint8 image [size, size, 4] of the scene under the point ``light``, its
    colour stored as linear light or sRGB-encoded (``encoding``), as most renderers store it."""
    fine = size * supersample
    rows, cols = torch.meshgrid(torch.arange(fine), torch.arange(fine), indexing="ij")
    focal = focal_from_fov(fine, synth.CAMERA_ANGLE_X)
    pose = torch.from_numpy(c2w).float()
    origins, dirs, _ = pixel_rays(pose, cols.reshape(-1), rows.reshape(-1), focal, fine, fine)
    dirs = dirs.double().numpy()
    rgb, hit = realistic.trace(c2w[:3, 3], dirs, light, INTENSITY, 0.0)
    rgba = np.concatenate([np.clip(rgb, 0, 1) * hit[:, None], hit[:, None]], axis=1)
    mean = rgba.reshape(size, supersample, size, supersample, 4).mean(axis=(1, 3))
    if encoding == "srgb":  # the pixel filter in linear light, then the encoding
        mean[..., :3] = linear_to_srgb(torch.from_numpy(mean[..., :3])).numpy()
    return np.round(mean * 255).astype(np.uint8)


def moving_lights(count: int, seed: int) -> list[np.ndarray]:
    """Lights on the upper hemisphere of radius LIGHT_RADIUS, 15-80 degrees up."""
    rng = np.random.default_rng(seed)
    lights = []
    for _ in range(count):
        up, phi = math.radians(rng.uniform(15, 80)), rng.uniform(0, 2 * math.pi)
        lights.append(LIGHT_RADIUS * np.array(
            [math.cos(up) * math.cos(phi), math.cos(up) * math.sin(phi), math.sin(up)]
        ))  # fmt: skip
    return lights


def truth_arrays(count: int = 200_000, seed: int = 0) -> dict[str, np.ndarray]:
    """``truth.npz``'s arrays: true surface points, ground plane, objects' size."""
    points = realistic.surface_points(count, seed)
    above = points[points[:, 2] > realistic.PLATE_TOP + 1e-3]
    size = float((above.max(0) - above.min(0)).max())
    plane = np.array([0.0, 0.0, 1.0, -realistic.PLATE_TOP])
    return {"points": points.astype(np.float32), "plane": plane, "size": np.array(size)}


def write_realistic_point(
    out: str | Path, size: int = 128, seed: int = 0, views: dict[str, int] | None = None,
    supersample: int = 2, encoding: str = "linear",
) -> Path:  # fmt: skip
    """Write the scene to ``out`` (which must not exist) and return ``out``; ``encoding``:
    ``linear`` or ``srgb`` images (see ``render_point``), declared in the JSON files."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists")
    if size < 8 or supersample < 1 or encoding not in ("linear", "srgb"):
        raise ValueError("need size >= 8, supersample >= 1 and encoding 'linear' or 'srgb'")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for split, count in (views or dict(VIEWS)).items():
            (staging / split).mkdir()
            poses = synth.camera_poses(split, count, seed)
            lights = moving_lights(count, seed + 7 * len(split))
            frames = []
            for i, (c2w, light) in enumerate(zip(poses, lights, strict=True)):
                if split == "train" and i % 2 == 0:
                    light = c2w[:3, 3]  # collocated
                image = render_point(c2w, light, size, supersample, encoding)
                iio.imwrite(staging / split / f"r_{i}.png", image)
                frames.append({
                    "file_path": f"./{split}/r_{i}",
                    "transform_matrix": c2w.tolist(),
                    "light_loc": [float(v) for v in light],
                    "light_intensity": INTENSITY,
                })  # fmt: skip
            meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "encoding": encoding, "frames": frames}
            (staging / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2) + "\n")
        np.savez(staging / "truth.npz", **truth_arrays(seed=seed))
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
