"""A realistic generated scene: textured and glossy objects on a ground plate, point lights.

Shared by the ``dtu`` and ``relight`` plugins' generators
(``atlas_core.api.realistic``). Shapes are the core's analytic ones
(``atlas_core.data.synth``: spheres, yawed boxes, capped cylinders) in a frame where
everything lies inside the unit ball, z up: a plate (seen only from above by cameras at
positive elevations), a sphere with a marble-like texture, a glossy sphere, a box with a
fine grid texture and a thin pole with a ball on top (thin parts and edges). Albedo is
procedural (sums of sines, so it is spatially varying at every scale the images
resolve); shading is ambient plus Lambert and a normalised Blinn-Phong lobe (Blinn 1977)
per point light with inverse-square falloff, and hard shadows by shadow rays.
``surface_points`` samples the true surfaces for Chamfer distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atlas_core.data import synth

__all__ = [
    "OBJECTS",
    "PLATE_TOP",
    "Material",
    "first_hit",
    "shade",
    "surface_points",
    "trace",
]

PLATE_TOP = -0.38
"""Height of the plate's top face (the ground plane)."""

EPS = 1e-4


@dataclass(frozen=True)
class Material:
    """Procedural albedo ``texture`` (a name), specular weight and Blinn-Phong exponent."""

    texture: str
    base: tuple[float, float, float]
    specular: float = 0.04
    shininess: float = 16.0


def _box(center, half, yaw=0.0) -> synth.Box:  # noqa: ANN001 - tuples of floats
    """A core box (its face colours are unused: albedo comes from the material)."""
    return synth.Box(center=center, half=half, yaw=math.radians(yaw), face_colors=((0.5,) * 3,) * 6)


def _sphere(center, radius) -> synth.CheckerSphere:  # noqa: ANN001
    """A core sphere (its checker colours are unused)."""
    return synth.CheckerSphere(center=center, radius=radius, colors=((0.5,) * 3,) * 2)


OBJECTS = (
    (_box((0.0, 0.0, PLATE_TOP - 0.04), (0.85, 0.85, 0.04)), Material("wood", (0.62, 0.45, 0.3))),
    (_sphere((-0.27, 0.12, PLATE_TOP + 0.3), 0.3), Material("marble", (0.85, 0.82, 0.75))),
    (_sphere((0.36, -0.22, PLATE_TOP + 0.2), 0.2), Material("flat", (0.7, 0.12, 0.1), 0.6, 80.0)),
    (
        _box((0.36, 0.4, PLATE_TOP + 0.15), (0.15, 0.15, 0.15), 25.0),
        Material("grid", (0.2, 0.45, 0.8)),
    ),
    (
        synth.Cylinder(
            center_xy=(-0.12, -0.45),
            radius=0.035,
            z_range=(PLATE_TOP, 0.3),
            stripe_colors=((0.5,) * 3,) * 2,
            cap_color=(0.5,) * 3,
        ),
        Material("stripes", (0.9, 0.75, 0.2), 0.3, 40.0),
    ),  # fmt: skip
    (_sphere((-0.12, -0.45, 0.36), 0.08), Material("flat", (0.15, 0.6, 0.25), 0.2, 30.0)),
)
"""(shape, material) pairs; the first is the ground plate."""


def _noise(points: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """A smooth pseudo-random value in about [-1, 1] per point (a sum of four sines)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(len(points))
    for octave in range(4):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        frequency = scale * 2.0**octave
        total += np.sin(frequency * points @ direction + rng.uniform(0, 2 * np.pi)) / 2**octave
    return total / 1.9


def albedo(material: Material, points: np.ndarray) -> np.ndarray:
    """Spatially varying albedo [N, 3] of ``material`` at surface ``points`` [N, 3]."""
    base = np.asarray(material.base)
    x, y, z = points.T
    if material.texture == "wood":  # checker of 0.17 cells, grain by noise
        checker = (np.floor(x / 0.17) + np.floor(y / 0.17)) % 2
        grain = 0.5 + 0.5 * np.sin(60.0 * (x + 0.08 * _noise(points, 6.0, 1)))
        value = 0.55 + 0.3 * checker[:, None] + 0.15 * grain[:, None]
        return np.clip(base * value, 0.0, 1.0)
    if material.texture == "marble":
        veins = np.abs(np.sin(9.0 * (z + x) + 3.0 * _noise(points, 5.0, 2)))
        tint = np.array([0.35, 0.3, 0.45])
        return np.clip(base - (1.0 - veins[:, None]) ** 4 * (base - tint), 0.0, 1.0)
    if material.texture == "grid":
        lines = (np.abs(np.sin(np.pi * points / 0.06)) < 0.2).any(axis=1)
        return np.where(lines[:, None], np.array([0.95, 0.95, 0.9]), base)
    if material.texture == "stripes":
        band = np.floor((z - PLATE_TOP) / 0.08) % 2
        return np.where(band[:, None] == 0, base, np.array([0.1, 0.1, 0.12]))
    return np.broadcast_to(base, points.shape).copy()


def first_hit(origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance [N] to the nearest surface (inf on a miss) and the object index [N]."""
    ts = np.stack([shape.intersect(origins, dirs) for shape, _ in OBJECTS])
    nearest = np.argmin(ts, axis=0)
    return ts[nearest, np.arange(len(dirs))], nearest


def shade(
    points: np.ndarray, index: np.ndarray, view: np.ndarray, lights: np.ndarray,
    power: float, ambient: float,
) -> np.ndarray:  # fmt: skip
    """Radiance [N, 3] at surface points of objects ``index`` seen along unit ``view``
    (towards the camera), lit by point ``lights`` [N, 3] of ``power`` (with shadows)."""
    rgb = np.zeros_like(points)
    for k, (shape, material) in enumerate(OBJECTS):
        sel = np.nonzero(index == k)[0]
        if not len(sel):
            continue
        x = points[sel]
        normal, _ = shape.surface(x)
        colour = albedo(material, x)
        offset = lights[sel] - x
        dist = np.linalg.norm(offset, axis=1)
        wi = offset / dist[:, None]
        cos = np.maximum((normal * wi).sum(1), 0.0)
        t, _ = first_hit(x + EPS * 10 * normal, wi)
        lit = (t >= dist - 1e-3) & (cos > 0)
        half = wi + view[sel]
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        s = material.shininess
        lobe = material.specular * (s + 8) / 8 * np.maximum((normal * half).sum(1), 0.0) ** s
        direct = (colour + lobe[:, None]) * (power * cos * lit / dist**2)[:, None]
        rgb[sel] = ambient * colour + direct
    return rgb


def trace(
    origins: np.ndarray, dirs: np.ndarray, lights: np.ndarray, power: float, ambient: float
) -> tuple[np.ndarray, np.ndarray]:
    """Colour [N, 3] (unclipped) and hit mask [N] of rays; ``lights`` [N, 3] per ray."""
    origins = np.broadcast_to(origins, dirs.shape).reshape(-1, 3)
    lights = np.broadcast_to(lights, dirs.shape).reshape(-1, 3)
    t, index = first_hit(origins, dirs)
    hit = np.isfinite(t)
    rgb = np.zeros_like(dirs)
    if hit.any():
        points = origins[hit] + t[hit, None] * dirs[hit]
        rgb[hit] = shade(points, index[hit], -dirs[hit], lights[hit], power, ambient)
    return rgb, hit


def surface_points(count: int, seed: int = 0) -> np.ndarray:
    """About ``count`` points [M, 3] on the visible-from-above surfaces, by area.

    Rays cast down from a dense set of directions over the upper hemisphere find the
    surfaces a camera above the plate can see (the plate's underside never appears).
    """
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(count, 3))
    dirs[:, 2] = -np.abs(dirs[:, 2]) - 0.25  # looking down, at least 14 degrees
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    targets = rng.uniform([-0.85, -0.85, PLATE_TOP], [0.85, 0.85, 0.5], size=(count, 3))
    origins = targets - 3.0 * dirs
    t, _ = first_hit(origins, dirs)
    hit = np.isfinite(t)
    return origins[hit] + t[hit, None] * dirs[hit]
