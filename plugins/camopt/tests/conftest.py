"""Fixtures of the camopt plugin's tests: a scene whose training poses are perturbed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from atlas_plugin_camopt import exp_so3

from atlas_core.api import synth

TRAIN_VIEWS = 12
ROTATION_DEG = 2.0
SHIFT = 0.1


@pytest.fixture(scope="session")
def perturbed_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48x48 generated scene whose training poses are turned 2 degrees about a random
    axis through the camera and moved 0.1 (cameras are 4 away); images stay rendered from
    the true poses, which ``true_poses.json`` keeps."""
    out = tmp_path_factory.mktemp("camopt") / "scene"
    synth.write_scene(out, size=48, views={"train": TRAIN_VIEWS, "test": 2})
    meta_path = out / "transforms_train.json"
    meta = json.loads(meta_path.read_text())
    rng = np.random.default_rng(2)
    true = []
    for frame in meta["frames"]:
        c2w = np.array(frame["transform_matrix"], dtype=np.float64)
        true.append(c2w.tolist())
        axis = rng.normal(size=3)
        turn = torch.tensor(axis / np.linalg.norm(axis) * math.radians(ROTATION_DEG))
        c2w[:3, :3] = exp_so3(turn).numpy() @ c2w[:3, :3]
        shift = rng.normal(size=3)
        c2w[:3, 3] += SHIFT * shift / np.linalg.norm(shift)
        frame["transform_matrix"] = c2w.tolist()
    meta_path.write_text(json.dumps(meta))
    (out / "true_poses.json").write_text(json.dumps(true))
    return out
