"""Helpers of the appearance plugin's tests: small trainers and their training PSNR."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from atlas_core.api import RunConfig
from atlas_core.testing import Trainer, load_plugins

__all__ = ["SMALL", "trainer", "training_psnr"]

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
