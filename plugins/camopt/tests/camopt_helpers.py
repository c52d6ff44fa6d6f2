"""Helpers of the camopt plugin's tests: small trainers, training PSNR and pose errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from atlas_plugin_camopt import find_camopt, rotation_angle

from atlas_core.api import RunConfig
from atlas_core.testing import Trainer, load_plugins

__all__ = ["SMALL", "pose_errors", "trainer", "training_psnr"]

SMALL = {"train.batch_rays": 512, "sampler.samples": 16, "field.width": 32, "eval.views": 1,
         "eval.video_frames": 0, "train.log_every": 1}  # fmt: skip


def trainer(data: Path, out: Path, plugins: tuple[str, ...], steps: int, **sets: Any) -> Trainer:
    """A Trainer with small settings; ``sets`` use ``__`` for the dot."""
    config = RunConfig()
    config.data.path = str(data)
    config.plugins = list(plugins)
    overrides = {key.replace("__", "."): value for key, value in sets.items()}
    for key, value in {**SMALL, "train.max_steps": steps, **overrides}.items():
        config.set(key, value)
    return Trainer(config, load_plugins(plugins), out)


def training_psnr(fitted: Trainer, last: int = 30) -> float:
    """PSNR of the mean ``rgb_l2`` loss over the last ``last`` training steps."""
    losses = [entry["rgb_l2"] for entry in fitted.history[-last:]]
    return -10 * math.log10(sum(losses) / len(losses))


def pose_errors(fitted: Trainer, data: Path) -> tuple[float, float, float]:
    """Mean errors of the training poses (the refined ones when camopt is on) against
    ``true_poses.json``: rotation (degrees), camera centre, and the point 4 units ahead
    of the camera (on the object: what the images show)."""
    true = torch.tensor(json.loads((data / "true_poses.json").read_text()), dtype=torch.float64)
    poses = fitted.scene.split("train").c2w.double()
    found = find_camopt(fitted.pipeline)
    if found is not None:
        with torch.no_grad():
            poses = found.refined_poses(poses.float()).double()
    turn = true[:, :3, :3].transpose(1, 2) @ poses[:, :3, :3]
    angle = math.degrees(float(rotation_angle(turn).mean()))
    ahead = torch.tensor([0.0, 0.0, -4.0], dtype=torch.float64)  # cameras look down -z
    seen = (true[:, :3, 3] + true[:, :3, :3] @ ahead) - (poses[:, :3, 3] + poses[:, :3, :3] @ ahead)
    centre = float((true[:, :3, 3] - poses[:, :3, 3]).norm(dim=-1).mean())
    return angle, centre, float(seen.norm(dim=-1).mean())
