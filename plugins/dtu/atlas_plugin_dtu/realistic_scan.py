"""The realistic generated DTU-layout scan: :mod:`atlas_core.data.realistic` on the DTU arc.

``atlas data synth OUT --kind dtu --size 128`` (or more) writes it: images ``size`` wide
and 3/4 as high (DTU's 4:3), 32 cameras on a 160-degree front arc at 15-50 degrees of
elevation (so the plate is seen only from above), one fixed point light plus ambient
(DTU's scans have fixed lights), shadows and a glossy highlight that moves with the
view. Masks cover the objects and the plate. ``truth.npz`` holds points sampled on the
true surfaces seen from above (``points``, in the normalised frame, as the loaded scene),
the ground plane (``plane``: ``n . x + d = 0``, ``n`` up), the objects' size (``size``, the
largest side of their bounding box without the plate) and ``scale_mat`` (normalised to
world). The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.api import realistic
from atlas_plugin_dtu.projection import Camera
from atlas_plugin_dtu.synth import LAYOUT, make_cameras, scale_matrix, world_matrix

__all__ = ["LIGHT", "VIEWS", "render_realistic", "truth_arrays", "write_realistic_scan"]

VIEWS = 32
ARC = 160.0
LIGHT = np.array([1.2, -1.6, 2.4])
POWER = 7.0
AMBIENT = 0.3
SKY = (np.array([0.55, 0.6, 0.7]), np.array([0.2, 0.2, 0.25]))  # top and bottom of the image


def render_realistic(
    camera: Camera, size: tuple[int, int], supersample: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """RGB [H, W, 3] and mask [H, W] (uint8) of the realistic scene seen by ``camera``."""
    width, height = size
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    cols = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    rows = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    u, v = np.meshgrid(cols, rows, indexing="xy")
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
    dirs = pixels @ np.linalg.inv(camera.K).T @ camera.R
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    rgb, hit = realistic.trace(camera.centre, dirs, LIGHT, POWER, AMBIENT)
    fade = (v.reshape(-1) / max(height - 1, 1))[:, None]
    sky = SKY[0] * (1 - fade) + SKY[1] * fade
    coverage = hit.astype(np.float64)[:, None]
    colour = np.clip(rgb, 0.0, 1.0) * coverage + sky * (1.0 - coverage)
    stack = np.concatenate([colour, coverage], axis=1).reshape(
        height, supersample, width, supersample, 4
    )
    mean = stack.mean(axis=(1, 3))
    as_uint8 = np.round(np.clip(mean, 0.0, 1.0) * 255.0).astype(np.uint8)
    return as_uint8[..., :3], as_uint8[..., 3]


def truth_arrays(count: int = 200_000, seed: int = 0) -> dict[str, np.ndarray]:
    """``truth.npz``'s arrays: true surface points, ground plane, objects' size, scale_mat."""
    points = realistic.surface_points(count, seed)
    above = points[points[:, 2] > realistic.PLATE_TOP + 1e-3]
    size = float((above.max(0) - above.min(0)).max())
    plane = np.array([0.0, 0.0, 1.0, -realistic.PLATE_TOP])
    return {"points": points.astype(np.float32), "plane": plane, "size": np.array(size),
            "scale_mat": scale_matrix()}  # fmt: skip


def write_realistic_scan(
    out: str | Path, size: int = 160, seed: int = 0, views: int = 0, supersample: int = 2
) -> Path:
    """Write the realistic scan to ``out`` (a new folder, or one without a scan) and return it
    (``views`` 0: :data:`VIEWS`)."""
    out = Path(out)
    views = views or VIEWS
    width, height = size, max(8, size * 3 // 4)
    if views < 2 or size < 8 or supersample < 1:
        raise ValueError("need views >= 2, size >= 8 and supersample >= 1")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    taken = [name for name in (*LAYOUT, "truth.npz") if (out / name).exists()]
    if taken:
        raise FileExistsError(f"{out} already holds {', '.join(taken)}")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "image").mkdir(parents=True)
    (staging / "mask").mkdir()
    try:
        arrays = {}
        factors = np.random.default_rng(seed + 1).uniform(0.5, 2.0, views)
        for i, camera in enumerate(make_cameras(views, (width, height), seed, ARC)):
            rgb, mask = render_realistic(camera, (width, height), supersample)
            iio.imwrite(staging / "image" / f"{i:06d}.png", rgb)
            iio.imwrite(staging / "mask" / f"{i:03d}.png", mask)
            arrays[f"world_mat_{i}"] = world_matrix(camera, factors[i] * (-1.0) ** i)
            arrays[f"scale_mat_{i}"] = scale_matrix()
        np.savez(staging / "cameras.npz", **arrays)
        np.savez(staging / "truth.npz", **truth_arrays(seed=seed))
        out.mkdir(parents=True, exist_ok=True)
        for entry in staging.iterdir():
            entry.rename(out / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
