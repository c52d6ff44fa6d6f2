"""Procedural scene written in the NeRF-synthetic ("Blender") format.

The scene is a handful of textured analytic shapes (a checkered sphere, a box with a
different colour on each face, a striped capped cylinder and a small gradient sphere)
ray traced with numpy, so that a new user can train without downloading anything.

Conventions match :mod:`atlas_core.cameras`: the camera looks along -Z of its own
frame, +X is right and +Y is up; the columns of a camera-to-world matrix are
(right, up, back, eye). Pixel ``(col, row)`` has its centre at ``(col + 0.5, row +
0.5)`` and row 0 is the top of the image. World +Z is up.

Every shape lies inside the ball of radius :data:`SCENE_RADIUS` about the origin
(and so inside the box ``[-1.2, 1.2]^3``); cameras sit on the upper hemisphere of
radius :data:`CAMERA_RADIUS` looking at the origin, and the ball is wholly in view of
every camera.
Command line: ``atlas data synth OUT_DIR [--size 64] [--seed 0]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

__all__ = [
    "AMBIENT",
    "Array",
    "Box",
    "CAMERA_ANGLE_X",
    "CAMERA_RADIUS",
    "CheckerSphere",
    "Cylinder",
    "DEFAULT_VIEWS",
    "GradientSphere",
    "LIGHT_DIR",
    "SCENE_RADIUS",
    "SHAPES",
    "Shape",
    "camera_poses",
    "focal_length",
    "look_at_origin",
    "ray_directions",
    "render_view",
    "scene_bounds",
    "trace",
    "trace_rgba",
    "write_blender",
    "write_scene",
]

CAMERA_ANGLE_X = 0.6911112070083618
"""Horizontal field of view in radians (the same as the NeRF-synthetic lego scene)."""

CAMERA_RADIUS = 4.0
"""Distance of every camera from the world origin."""

SCENE_RADIUS = 1.2
"""Radius of a ball about the origin that holds every shape of the scene."""

AMBIENT = 0.35
"""Ambient term of the Lambertian shading; the diffuse term has weight ``1 - AMBIENT``."""

LIGHT_DIR = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
"""Unit vector towards the single directional light (world space)."""

DEFAULT_VIEWS = {"train": 100, "val": 8, "test": 16}
"""Number of views written for each split when ``views`` is not given."""

_EPS = 1e-9
_TRAIN_ELEVATION_DEG = (10.0, 75.0)
_RING_ELEVATION_DEG = {"val": 50.0, "test": 30.0}
_RING_AZIMUTH_OFFSET = {"val": 0.25, "test": 0.5}

Array = np.ndarray


def _dot(a: Array, b: Array) -> Array:
    """Row-wise dot product of [..., 3] arrays."""
    return np.einsum("...i,...i->...", a, b)


@dataclass(frozen=True)
class CheckerSphere:
    """Sphere with a latitude/longitude checker texture."""

    center: tuple[float, float, float]
    radius: float
    colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    cells_around: int = 8
    cells_down: int = 4

    def intersect(self, origins: Array, dirs: Array) -> Array:
        """Distance to the nearest hit along unit ``dirs`` ([N]; inf where missed)."""
        return _sphere_hit(origins, dirs, np.asarray(self.center), self.radius)

    def surface(self, points: Array) -> tuple[Array, Array]:
        """Unit normals and albedo [N, 3] at surface ``points``."""
        n = (points - np.asarray(self.center)) / self.radius
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        lon = np.arctan2(n[:, 1], n[:, 0]) / (2.0 * math.pi) + 0.5
        lat = np.arccos(np.clip(n[:, 2], -1.0, 1.0)) / math.pi
        i = np.floor(lon * self.cells_around).astype(np.int64)
        j = np.floor(lat * self.cells_down).astype(np.int64)
        parity = ((i + j) % 2)[:, None]
        c0, c1 = np.asarray(self.colors[0]), np.asarray(self.colors[1])
        return n, np.where(parity == 0, c0, c1)


@dataclass(frozen=True)
class GradientSphere:
    """Sphere whose albedo blends from ``bottom`` to ``top`` colour with height."""

    center: tuple[float, float, float]
    radius: float
    bottom: tuple[float, float, float]
    top: tuple[float, float, float]

    def intersect(self, origins: Array, dirs: Array) -> Array:
        """Distance to the nearest hit along unit ``dirs`` ([N]; inf where missed)."""
        return _sphere_hit(origins, dirs, np.asarray(self.center), self.radius)

    def surface(self, points: Array) -> tuple[Array, Array]:
        """Unit normals and albedo [N, 3] at surface ``points``."""
        n = (points - np.asarray(self.center)) / self.radius
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        w = (0.5 * (n[:, 2] + 1.0))[:, None]
        return n, (1.0 - w) * np.asarray(self.bottom) + w * np.asarray(self.top)


@dataclass(frozen=True)
class Box:
    """Box rotated about world Z, one colour per face with a 2x2 light/dark checker."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    face_colors: tuple[tuple[float, float, float], ...]
    dark: float = 0.6

    def _rotation(self) -> Array:
        """Local-to-world rotation [3, 3]."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def intersect(self, origins: Array, dirs: Array) -> Array:
        """Distance to the nearest hit along unit ``dirs`` ([N]; inf where missed)."""
        rot = self._rotation()
        o = (origins - np.asarray(self.center)) @ rot
        d = dirs @ rot
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        h = np.asarray(self.half)
        t1, t2 = (-h - o) / d, (h - o) / d
        t_near = np.minimum(t1, t2).max(axis=-1)
        t_far = np.maximum(t1, t2).min(axis=-1)
        t = np.where(t_near > _EPS, t_near, t_far)
        return np.where((t_near <= t_far) & (t > _EPS), t, np.inf)

    def surface(self, points: Array) -> tuple[Array, Array]:
        """Unit normals and albedo [N, 3] at surface ``points``."""
        rot = self._rotation()
        p = (points - np.asarray(self.center)) @ rot
        q = p / np.asarray(self.half)
        axis = np.argmax(np.abs(q), axis=-1)
        rows = np.arange(len(p))
        sign = np.sign(q[rows, axis])
        sign[sign == 0] = 1.0
        n_local = np.zeros_like(p)
        n_local[rows, axis] = sign
        face = 2 * axis + (sign > 0)
        uv = np.stack([q[rows, (axis + 1) % 3], q[rows, (axis + 2) % 3]], axis=-1)
        checker = (np.floor(np.clip(uv, -1.0, 1.0 - 1e-9) + 1.0).sum(-1) % 2)[:, None]
        albedo = np.asarray(self.face_colors)[face] * np.where(checker == 0, 1.0, self.dark)
        return n_local @ rot.T, albedo


@dataclass(frozen=True)
class Cylinder:
    """Capped cylinder along world Z with horizontal stripes and plain caps."""

    center_xy: tuple[float, float]
    radius: float
    z_range: tuple[float, float]
    stripe_colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    cap_color: tuple[float, float, float]
    stripes: int = 5

    def intersect(self, origins: Array, dirs: Array) -> Array:
        """Distance to the nearest hit along unit ``dirs`` ([N]; inf where missed)."""
        z0, z1 = self.z_range
        ox = origins[:, 0] - self.center_xy[0]
        oy = origins[:, 1] - self.center_xy[1]
        dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
        a = dx * dx + dy * dy
        b = ox * dx + oy * dy
        c = ox * ox + oy * oy - self.radius**2
        disc = b * b - a * c
        ok = (disc >= 0.0) & (a > 1e-12)
        root = np.sqrt(np.where(ok, disc, 0.0))
        a_safe = np.where(a > 1e-12, a, 1.0)
        candidates = []
        for t in ((-b - root) / a_safe, (-b + root) / a_safe):
            z = origins[:, 2] + t * dz
            candidates.append(np.where(ok & (z >= z0) & (z <= z1) & (t > _EPS), t, np.inf))
        dz_safe = np.where(np.abs(dz) < 1e-12, 1e-12, dz)
        for zc in (z0, z1):
            t = (zc - origins[:, 2]) / dz_safe
            rx, ry = ox + t * dx, oy + t * dy
            inside = rx * rx + ry * ry <= self.radius**2
            candidates.append(np.where(inside & (t > _EPS), t, np.inf))
        return np.min(np.stack(candidates), axis=0)

    def surface(self, points: Array) -> tuple[Array, Array]:
        """Unit normals and albedo [N, 3] at surface ``points``."""
        z0, z1 = self.z_range
        rx = points[:, 0] - self.center_xy[0]
        ry = points[:, 1] - self.center_xy[1]
        rho = np.sqrt(rx * rx + ry * ry)
        z = points[:, 2]
        cap_dist = np.minimum(np.abs(z - z0), np.abs(z - z1))
        on_cap = cap_dist < np.abs(rho - self.radius)
        rho_safe = np.maximum(rho, 1e-12)
        side_n = np.stack([rx / rho_safe, ry / rho_safe, np.zeros_like(z)], axis=-1)
        cap_sign = np.where(np.abs(z - z1) < np.abs(z - z0), 1.0, -1.0)
        cap_n = np.stack([np.zeros_like(z), np.zeros_like(z), cap_sign], axis=-1)
        n = np.where(on_cap[:, None], cap_n, side_n)
        band = np.floor((z - z0) / (z1 - z0) * self.stripes).astype(np.int64) % 2
        c0, c1 = np.asarray(self.stripe_colors[0]), np.asarray(self.stripe_colors[1])
        side_albedo = np.where(band[:, None] == 0, c0, c1)
        albedo = np.where(on_cap[:, None], np.asarray(self.cap_color), side_albedo)
        return n, albedo


Shape = CheckerSphere | GradientSphere | Box | Cylinder

SHAPES: tuple[Shape, ...] = (
    CheckerSphere(
        center=(0.0, 0.0, 0.0),
        radius=0.48,
        colors=((0.92, 0.16, 0.10), (0.98, 0.82, 0.12)),
    ),
    Box(
        center=(0.65, -0.46, -0.28),
        half=(0.19, 0.19, 0.19),
        yaw=math.radians(30.0),
        face_colors=(
            (0.10, 0.35, 0.95),
            (0.10, 0.80, 0.25),
            (0.90, 0.15, 0.80),
            (0.98, 0.55, 0.08),
            (0.10, 0.85, 0.90),
            (0.55, 0.20, 0.90),
        ),
    ),
    Cylinder(
        center_xy=(-0.56, 0.5),
        radius=0.17,
        z_range=(-0.55, 0.3),
        stripe_colors=((0.12, 0.30, 0.95), (0.15, 0.90, 0.95)),
        cap_color=(0.20, 0.85, 0.30),
    ),
    GradientSphere(
        center=(0.22, 0.5, 0.66),
        radius=0.21,
        bottom=(0.90, 0.10, 0.70),
        top=(0.25, 0.95, 0.30),
    ),
)
"""The shapes of the scene, all inside the ball of radius :data:`SCENE_RADIUS`."""


def _sphere_hit(origins: Array, dirs: Array, center: Array, radius: float) -> Array:
    """Nearest positive distance from ``origins`` along unit ``dirs`` to a sphere."""
    oc = origins - center
    b = _dot(oc, dirs)
    c = _dot(oc, oc) - radius * radius
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - root, -b + root
    t = np.where(t0 > _EPS, t0, t1)
    return np.where((disc >= 0.0) & (t > _EPS), t, np.inf)


def scene_bounds() -> tuple[float, float]:
    """Near and far ray distances ``(2.0, 6.0)`` that bracket the whole scene.

    Every camera is :data:`CAMERA_RADIUS` (4) from the origin and every shape is within
    :data:`SCENE_RADIUS` (1.2) of it, so all geometry lies at distances in
    ``[2.8, 5.2]`` along any ray; ``(2.0, 6.0)`` leaves a margin, as for NeRF-synthetic.
    """
    return 2.0, 6.0


def trace(
    origins: Array, dirs: Array, shapes: tuple[Shape, ...] | None = None
) -> tuple[Array, Array]:
    """Shaded colour [N, 3] and hit mask [N] for rays with unit ``dirs`` (nearest hit wins)
    among ``shapes`` (the scene's SHAPES by default)."""
    shapes = SHAPES if shapes is None else shapes
    origins = np.broadcast_to(origins, dirs.shape).reshape(-1, 3)
    dirs = dirs.reshape(-1, 3)
    ts = np.stack([shape.intersect(origins, dirs) for shape in shapes])
    nearest = np.argmin(ts, axis=0)
    t = ts[nearest, np.arange(len(dirs))]
    hit = np.isfinite(t)
    rgb = np.zeros_like(dirs)
    for k, shape in enumerate(shapes):
        sel = hit & (nearest == k)
        if not sel.any():
            continue
        points = origins[sel] + t[sel, None] * dirs[sel]
        normals, albedo = shape.surface(points)
        diffuse = np.maximum(0.0, normals @ LIGHT_DIR)
        rgb[sel] = albedo * (AMBIENT + (1.0 - AMBIENT) * diffuse)[:, None]
    return np.clip(rgb, 0.0, 1.0), hit


def trace_rgba(origin: Array, dirs: Array, shapes: tuple[Shape, ...]) -> Array:
    """RGBA [N, 4] of rays from one ``origin`` among ``shapes``: colour, and alpha 1 on a hit
    (0 and black elsewhere), so straight and premultiplied alpha agree."""
    rgb, hit = trace(origin, dirs, shapes)
    return np.concatenate([rgb * hit[:, None], hit[:, None].astype(rgb.dtype)], axis=1)


def focal_length(size: int, camera_angle_x: float = CAMERA_ANGLE_X) -> float:
    """Focal length in pixels of a ``size``-pixel-wide image with the given field of view."""
    return 0.5 * size / math.tan(0.5 * camera_angle_x)


def look_at_origin(eye: Array) -> Array:
    """Camera-to-world matrix [4, 4] for a camera at ``eye`` looking at the origin, +Z up."""
    eye = np.asarray(eye, dtype=np.float64)
    back = eye / np.linalg.norm(eye)
    right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, eye
    return c2w


def _eye(elevation: float, azimuth: float) -> Array:
    """Camera position at the given elevation and azimuth (radians) on the sphere."""
    ce = math.cos(elevation)
    return CAMERA_RADIUS * np.array(
        [ce * math.cos(azimuth), ce * math.sin(azimuth), math.sin(elevation)]
    )


def camera_poses(split: str, count: int, seed: int = 0) -> list[Array]:
    """Camera-to-world matrices for ``count`` views of ``split`` (train, val or test).

    Train views follow a Fibonacci spiral, uniform in area over elevations 10..75
    degrees; val and test views are evenly spaced rings at 50 and 30 degrees of
    elevation, at azimuths offset from each other. ``seed`` rotates each pattern about Z.
    """
    if split not in DEFAULT_VIEWS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(DEFAULT_VIEWS)}")
    if count < 0:
        raise ValueError(f"view count must be non-negative, got {count}")
    phases = np.random.default_rng(seed).uniform(0.0, 2.0 * math.pi, size=3)
    phase = float(phases[list(DEFAULT_VIEWS).index(split)])
    poses = []
    if split == "train":
        lo, hi = (math.sin(math.radians(e)) for e in _TRAIN_ELEVATION_DEG)
        golden = math.pi * (3.0 - math.sqrt(5.0))
        for i in range(count):
            z = lo + (i + 0.5) / count * (hi - lo)
            poses.append(look_at_origin(_eye(math.asin(z), phase + i * golden)))
    else:
        elevation = math.radians(_RING_ELEVATION_DEG[split])
        offset = _RING_AZIMUTH_OFFSET[split]
        for i in range(count):
            azimuth = phase + 2.0 * math.pi * (i + offset) / count
            poses.append(look_at_origin(_eye(elevation, azimuth)))
    return poses


def ray_directions(
    c2w: Array, size: int, supersample: int = 1, camera_angle_x: float = CAMERA_ANGLE_X
) -> Array:
    """Unit world directions [size * ss, size * ss, 3] of the sub-pixel rays of ``c2w``.

    Pixel ``(col, row)`` gets ``ss x ss`` rays through ``(col + (i + 0.5) / ss, row +
    (j + 0.5) / ss)``; with ``ss = 1`` that is the pixel centre.
    """
    if size < 1 or supersample < 1:
        raise ValueError("size and supersample must be positive")
    focal = focal_length(size, camera_angle_x)
    n = size * supersample
    s = (np.arange(n) + 0.5) / supersample - 0.5 * size
    x = np.broadcast_to(s[None, :] / focal, (n, n))
    y = np.broadcast_to(-s[:, None] / focal, (n, n))
    dirs_cam = np.stack([x, y, -np.ones((n, n))], axis=-1)
    dirs = dirs_cam @ np.asarray(c2w, dtype=np.float64)[:3, :3].T
    return dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)


def render_view(
    c2w: Array, size: int, supersample: int = 2, camera_angle_x: float = CAMERA_ANGLE_X
) -> Array:
    """Straight-alpha RGBA uint8 image [size, size, 4] of the scene seen by ``c2w``."""
    c2w = np.asarray(c2w, dtype=np.float64)
    dirs = ray_directions(c2w, size, supersample, camera_angle_x)
    rgb, hit = trace(c2w[:3, 3], dirs)
    alpha = hit.astype(np.float64)[:, None]
    premul = np.concatenate([rgb * alpha, alpha], axis=-1).reshape(
        size, supersample, size, supersample, 4
    )
    premul = premul.mean(axis=(1, 3))
    a = premul[..., 3:]
    color = np.where(a > 0.0, premul[..., :3] / np.maximum(a, 1e-12), 0.0)
    alpha8 = np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    rgb8 = np.round(np.clip(color, 0.0, 1.0) * 255.0).astype(np.uint8)
    rgb8[alpha8[..., 0] == 0] = 0
    return np.concatenate([rgb8, alpha8], axis=-1)


def write_scene(
    out: str | Path,
    *,
    size: int = 64,
    views: dict[str, int] | None = None,
    seed: int = 0,
    supersample: int = 2,
) -> Path:
    """Render the scene into ``out`` in NeRF-synthetic layout and return ``out``.

    ``views`` maps split names (train, val, test) to view counts; only the splits it
    names are written (default :data:`DEFAULT_VIEWS`). Raises ``FileExistsError`` if
    ``out`` exists and is not an empty folder. Same arguments give identical files.
    """
    out = Path(out)
    views = dict(DEFAULT_VIEWS if views is None else views)
    for split, count in views.items():
        if split not in DEFAULT_VIEWS:
            raise ValueError(f"unknown split {split!r}; expected one of {list(DEFAULT_VIEWS)}")
        if count < 0:
            raise ValueError(f"view count must be non-negative, got {count} for {split}")
    if size < 1 or supersample < 1:
        raise ValueError("size and supersample must be positive")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    for split, count in views.items():
        (out / split).mkdir()
        frames = []
        for i, c2w in enumerate(camera_poses(split, count, seed)):
            iio.imwrite(out / split / f"r_{i}.png", render_view(c2w, size, supersample))
            frames.append(
                {
                    "file_path": f"./{split}/r_{i}",
                    "rotation": 0.0,
                    "transform_matrix": [[float(v) for v in row] for row in c2w],
                }
            )
        meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=4) + "\n")
    return out


def write_blender(out: str | Path, size: int = 64, seed: int = 0, train_views: int = 100) -> Path:
    """The blender data kind's generated scene (``atlas data synth --kind blender``)."""
    return write_scene(out, size=size, seed=seed, views=dict(DEFAULT_VIEWS, train=train_views))
