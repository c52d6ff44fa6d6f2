"""Structure from motion on the CPU with pycolmap (COLMAP's Python bindings).

Incremental SfM as COLMAP does it (Schönberger and Frahm, "Structure-from-Motion
Revisited", CVPR 2016): SIFT features, exhaustive or sequential matching with geometric
verification, then incremental mapping. One camera is shared by every image. Nothing is
downloaded (sequential matching runs without loop detection, which needs a vocabulary
tree). pycolmap is imported only here, when a scene is processed, so the core works
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atlas_core.errors import AtlasError

__all__ = [
    "CAMERA_MODELS",
    "MATCHERS",
    "Camera",
    "Solution",
    "extract",
    "import_pycolmap",
    "map_images",
    "match",
    "opencv_camera",
]

CAMERA_MODELS = ("SIMPLE_RADIAL", "OPENCV", "RADIAL", "PINHOLE", "SIMPLE_PINHOLE")
MATCHERS = ("exhaustive", "sequential")


@dataclass
class Camera:
    """The shared camera as OPENCV parameters (pixel centres at +0.5, as COLMAP's)."""

    model: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0


@dataclass
class Solution:
    """The largest reconstruction: registered images (by name) and their poses."""

    names: list[str]
    world_to_camera: np.ndarray  # [N, 3, 4], OpenCV camera axes: x_cam = R x_world + t
    image_ids: list[int]
    camera: Camera
    points: np.ndarray  # [P, 3] float64
    colours: np.ndarray  # [P, 3] uint8
    model: Any  # the pycolmap.Reconstruction, written to colmap/sparse/0
    models: int = 1  # reconstructions the mapper made; the largest is kept


def import_pycolmap(quiet: bool | None = None) -> Any:
    """The pycolmap module, or an AtlasError saying how to install it; ``quiet`` True
    keeps COLMAP's log to fatal errors, False shows all of it on stderr."""
    try:
        import pycolmap
    except ImportError as exc:
        raise AtlasError(
            "atlas data process needs pycolmap: pip install 'nerf-atlas[sfm]'"
        ) from exc
    if quiet is not None:
        pycolmap.logging.minloglevel = 3 if quiet else 0  # quiet: our messages say what failed
        pycolmap.logging.logtostderr = not quiet
    return pycolmap


def extract(
    database: Path, images: Path, names: list[str], camera_model: str, threads: int = -1
) -> None:
    """SIFT features of ``names`` (files in ``images``) into ``database``, one camera, on
    ``threads`` threads (-1: every core)."""
    pycolmap = import_pycolmap()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    pycolmap.extract_features(
        database,
        images,
        image_names=names,
        camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )


def match(database: Path, matcher: str, threads: int = -1, seed: int = 0) -> None:
    """Match every pair (``exhaustive``) or each image with its next ones by name
    (``sequential``, COLMAP's default overlap of 10 plus quadratic overlap) on ``threads``
    threads, each pair's geometric verification seeded with ``seed`` (COLMAP seeds its
    RANSAC from the clock unless told)."""
    pycolmap = import_pycolmap()
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    chosen = {"matching_options": matching, "verification_options": verification}
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, **chosen, device=pycolmap.Device.cpu)
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.loop_detection = False  # would need a downloaded vocabulary tree
        pycolmap.match_sequential(
            database, pairing_options=pairing, **chosen, device=pycolmap.Device.cpu
        )
    else:
        raise AtlasError(f"--matcher must be one of {', '.join(MATCHERS)}, got '{matcher}'")


def opencv_camera(model: str, width: int, height: int, params: list[float]) -> Camera:
    """COLMAP camera parameters of ``model`` as an OPENCV camera."""
    p = [float(v) for v in params]
    if model == "SIMPLE_PINHOLE":
        return Camera(model, width, height, p[0], p[0], p[1], p[2])
    if model == "PINHOLE":
        return Camera(model, width, height, *p[:4])
    if model == "SIMPLE_RADIAL":
        return Camera(model, width, height, p[0], p[0], p[1], p[2], k1=p[3])
    if model == "RADIAL":
        return Camera(model, width, height, p[0], p[0], p[1], p[2], k1=p[3], k2=p[4])
    if model == "OPENCV":
        return Camera(model, width, height, *p[:8])
    raise AtlasError(f"camera model {model} is not supported ({', '.join(CAMERA_MODELS)})")


def map_images(
    database: Path,
    images: Path,
    scratch: Path,
    tick: Callable[[], None] | None = None,
    seed: int = 0,
    init_min_tri_angle: float | None = None,
    threads: int = -1,
) -> Solution | None:
    """Incremental mapping on ``threads`` threads; the reconstruction with the most
    registered images, or None.

    ``init_min_tri_angle`` (degrees) overrides COLMAP's 16 for the initial pair: smaller
    suits forward-facing captures, whose baselines are short next to the depth.
    """
    pycolmap = import_pycolmap()
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = seed
    options.num_threads = threads
    if init_min_tri_angle is not None:
        options.mapper.init_min_tri_angle = init_min_tri_angle
    models = pycolmap.incremental_mapping(
        database, images, scratch, options=options, next_image_callback=tick
    )
    if not models:
        return None
    model = max(models.values(), key=lambda m: m.num_reg_images())
    ids = sorted(model.reg_image_ids(), key=lambda i: model.image(i).name)
    if not ids:
        return None
    poses, names = [], []
    for image_id in ids:
        image = model.image(image_id)
        names.append(image.name)
        poses.append(np.asarray(image.cam_from_world().matrix(), dtype=np.float64))
    cam = model.image(ids[0]).camera
    camera = opencv_camera(cam.model.name, cam.width, cam.height, list(cam.params))
    points = model.points3D.values()
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    return Solution(names, np.stack(poses), ids, camera, xyz, rgb, model, len(models))
