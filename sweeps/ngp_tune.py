"""Tune Instant-NGP's hash grid, MLP width, learning rate and ray batch on a scene.

Run: ``atlas sweep sweeps/ngp_tune.py --data DIR --trials 20 --time-budget 60``.
"""

from __future__ import annotations

import optuna

from atlas_core.config import RunConfig
from atlas_core.sweep import set_param

REQUIRES = ("ngp",)
BASE = {"plugins": ["ngp"], "sampler": "occupancy", "eval.views": 8, "eval.video_frames": 24}


def space(trial: optuna.Trial, config: RunConfig) -> None:
    """Hash-grid size and resolution, MLP width, learning rate schedule, batch."""
    set_param(config, "field.levels", trial.suggest_int("levels", 8, 16, step=4))
    set_param(config, "field.log2_table", trial.suggest_int("log2_table", 14, 19))
    finest = trial.suggest_categorical("finest_resolution", [256, 512, 1024, 2048])
    set_param(config, "field.finest_resolution", finest)
    set_param(config, "field.hidden", trial.suggest_categorical("hidden", [32, 64]))
    lr = set_param(config, "train.lr", trial.suggest_float("lr", 3e-3, 3e-2, log=True))
    decay = trial.suggest_float("lr_decay", 3.0, 30.0, log=True)
    set_param(config, "train.lr_final", lr / decay)
    batch = trial.suggest_categorical("batch_rays", [2048, 4096, 8192])
    set_param(config, "train.batch_rays", batch)
