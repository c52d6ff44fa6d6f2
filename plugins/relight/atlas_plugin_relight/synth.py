"""A generated point-light scene with known geometry and reflectance, in the nerv_point layout.

An analytic SDF (sphere or box) shaded with normalised Blinn-Phong (Blinn 1977; the
same ``blinn_phong`` the renderer learns with) under one point light per image that
moves from image to image (or sits at the camera: ``collocated``), with inverse-square
falloff. Rays use the core's pixel-centre convention, so the loader sees exactly these
cameras. Run ``python -m atlas_plugin_relight.synth OUT`` to write one.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from atlas_core.api import focal_from_fov, pixel_rays, synth
from atlas_plugin_relight.brdf import blinn_phong, unit

ALBEDO = (0.75, 0.45, 0.25)
SPECULAR = 0.25
SHININESS = 16.0
INTENSITY = 9.0
LIGHT_RADIUS = 3.0
RADIUS = 0.8  # sphere radius; the box's half size is RADIUS / sqrt(2)


def hit_sphere(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Distance to and normal at the sphere |x| = RADIUS (inf where missed)."""
    b = (origins * dirs).sum(-1, keepdim=True)
    c = (origins * origins).sum(-1, keepdim=True) - RADIUS**2
    disc = b * b - c
    t = torch.where(disc > 0, -b - disc.clamp_min(0).sqrt(), torch.full_like(b, math.inf))
    return t, unit(origins + t.nan_to_num(posinf=0) * dirs)


def hit_box(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Distance to and normal at the axis-aligned cube of half size RADIUS / sqrt(2)."""
    half = RADIUS / math.sqrt(2.0)
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (-half - origins) * inv, (half - origins) * inv
    enter = torch.minimum(t0, t1).amax(-1, keepdim=True)
    leave = torch.maximum(t0, t1).amin(-1, keepdim=True)
    t = torch.where((enter < leave) & (enter > 0), enter, torch.full_like(enter, math.inf))
    x = origins + t.nan_to_num(posinf=0) * dirs
    axis = x.abs().argmax(-1, keepdim=True)
    normal = torch.zeros_like(x).scatter(-1, axis, x.gather(-1, axis).sign())
    return t, normal


def shade(x: Tensor, n: Tensor, wo: Tensor, light: Tensor, intensity: float) -> Tensor:
    """Blinn-Phong radiance [R, 3] under one point light (inverse-square falloff)."""
    offset = light - x
    dist2 = (offset * offset).sum(-1, keepdim=True)
    wi = unit(offset)[:, None, :]
    albedo = x.new_tensor(ALBEDO).expand(len(x), 3)
    ks, s = x.new_full((len(x), 1), SPECULAR), x.new_full((len(x), 1), SHININESS)
    f = blinn_phong(albedo, ks, s, n, wi, wo)[:, 0]
    cos = (n * wi[:, 0]).sum(-1, keepdim=True).clamp_min(0)
    return f * intensity / dist2 * cos


def render(c2w: np.ndarray, light: np.ndarray, size: int, shape: str) -> np.ndarray:
    """One RGBA uint8 image [size, size, 4]; alpha marks the object."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pose = torch.from_numpy(c2w).float()
    focal = focal_from_fov(size, synth.CAMERA_ANGLE_X)
    origins, dirs, _ = pixel_rays(pose, cols.reshape(-1), rows.reshape(-1), focal, size, size)
    t, n = (hit_box if shape == "box" else hit_sphere)(origins, dirs)
    hit = torch.isfinite(t)
    x = origins + t.nan_to_num(posinf=0) * dirs
    rgb = shade(x, n, -dirs, torch.from_numpy(light).float(), INTENSITY)
    rgb = torch.where(hit, rgb, torch.zeros_like(rgb))  # misses may sit on a collocated light
    rgba = torch.cat([rgb.clamp(0, 1), hit.float()], -1).view(size, size, 4)
    return (rgba.numpy() * 255).round().astype(np.uint8)


def light_positions(count: int, seed: int) -> list[np.ndarray]:
    """Random lights on the upper hemisphere of radius LIGHT_RADIUS."""
    rng = np.random.default_rng(seed + 1)
    lights = []
    for _ in range(count):
        z, phi = rng.uniform(0.2, 1.0), rng.uniform(0, 2 * math.pi)
        r = math.sqrt(1 - z * z)
        lights.append(LIGHT_RADIUS * np.array([r * math.cos(phi), r * math.sin(phi), z]))
    return lights


def write_point_scene(
    out: str | Path,
    size: int = 32,
    views: dict[str, int] | None = None,
    shape: str = "sphere",
    collocated: bool = False,
    seed: int = 0,
) -> Path:
    """Write the scene to ``out`` (transforms_{split}.json, PNGs of linear light, which
    the JSON declares) and return ``out``."""
    out = Path(out)
    if shape not in ("sphere", "box"):
        raise ValueError(f"shape must be sphere or box, got {shape!r}")
    out.mkdir(parents=True, exist_ok=False)
    for split, count in (views or {"train": 24, "test": 4}).items():
        (out / split).mkdir()
        frames = []
        poses = synth.camera_poses(split, count, seed)
        lights = light_positions(count, seed + len(split))
        for i, (c2w, light) in enumerate(zip(poses, lights, strict=True)):
            light = c2w[:3, 3] if collocated else light
            iio.imwrite(out / split / f"r_{i}.png", render(c2w, light, size, shape))
            frames.append({
                "file_path": f"./{split}/r_{i}",
                "transform_matrix": c2w.tolist(),
                "light_loc": [float(v) for v in light],
                "light_intensity": INTENSITY,
            })  # fmt: skip
        meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "encoding": "linear", "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def main() -> None:
    """Command line: write a scene."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--shape", choices=("sphere", "box"), default="sphere")
    parser.add_argument("--collocated", action="store_true")
    args = parser.parse_args()
    write_point_scene(args.out, args.size, shape=args.shape, collocated=args.collocated)


if __name__ == "__main__":
    main()


REALISTIC_SIZE = 128  # from this width on, ``atlas data synth`` writes the realistic scene


def generate(out: str | Path, size: int = 32, seed: int = 0) -> Path:
    """``atlas data synth --kind nerv_point``: the sphere under moving point lights; from
    :data:`REALISTIC_SIZE` pixels on, the realistic scene (``realistic_point``)."""
    if size >= REALISTIC_SIZE:
        from atlas_plugin_relight.realistic_point import write_realistic_point

        return write_realistic_point(out, size=size, seed=seed)
    return write_point_scene(out, size=size, seed=seed)
