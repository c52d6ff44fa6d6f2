"""VolSDF with Mip-NeRF's cone sampling and integrated encoding: tune the two together.

Needs both plugins; without either it stops before the first trial with the pip line.
Run: ``atlas sweep sweeps/volsdf_mip.py --data DIR --trials 12 --time-budget 180``.
"""

from __future__ import annotations

import optuna

from atlas_core.config import RunConfig
from atlas_core.sweep import set_param

REQUIRES = ("volsdf", "mip")
BASE = {"plugins": ["volsdf", "mip"], "eval.views": 8, "eval.video_frames": 24}


def space(trial: optuna.Trial, config: RunConfig) -> None:
    """SDF network size, Laplace beta, eikonal weight, IPE frequencies, learning rate."""
    set_param(config, "field.width", trial.suggest_categorical("width", [64, 128, 256]))
    set_param(config, "field.depth", trial.suggest_int("depth", 3, 6))
    set_param(config, "field.beta_init", trial.suggest_float("beta_init", 0.01, 0.3, log=True))
    set_param(config, "losses.eikonal", trial.suggest_float("eikonal", 0.01, 0.3, log=True))
    set_param(config, "encoding.frequencies", trial.suggest_int("frequencies", 6, 12))
    set_param(config, "sampler.samples", trial.suggest_categorical("samples", [32, 64, 96]))
    set_param(config, "train.lr", trial.suggest_float("lr", 5e-4, 1e-2, log=True))
