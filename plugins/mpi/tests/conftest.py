"""Fixtures of the mpi plugin's tests: a generated forward-facing scene."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from atlas_core.api import synth


def facing_pose(x: float, y: float, height: float = 4.0) -> np.ndarray:
    """A camera at ``(x, y, height)`` looking straight down -Z (world +Z up), +Y up."""
    pose = np.eye(4)
    pose[:3, 3] = (x, y, height)
    return pose


def write_facing_scene(out: Path, size: int = 24, spacing: float = 0.3) -> Path:
    """The core's procedural scene seen by a 3x3 grid of parallel cameras (train) and two
    cameras between them (test), in blender layout: a forward-facing capture as LLFF's."""
    offsets = (-spacing, 0.0, spacing)
    cameras = {
        "train": [facing_pose(x, y) for y in offsets for x in offsets],
        "test": [facing_pose(0.5 * spacing, -0.5 * spacing), facing_pose(-0.5 * spacing, 0.0)],
    }
    for split, poses in cameras.items():
        (out / split).mkdir(parents=True)
        frames = []
        for i, pose in enumerate(poses):
            iio.imwrite(out / split / f"r_{i}.png", synth.render_view(pose, size))
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": pose.tolist()})
        meta = {"camera_angle_x": synth.CAMERA_ANGLE_X, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="session")
def facing_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24x24 forward-facing scene: 9 train and 2 test views."""
    return write_facing_scene(tmp_path_factory.mktemp("mpi") / "scene")
