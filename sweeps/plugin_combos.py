"""Which set of installed plugins is best on a scene under a time budget.

The plugin set is one categorical parameter (sets needing a plugin that is not installed
are left out); each set then suggests its own parameters, and every set shares the
learning rate. Run: ``atlas sweep sweeps/plugin_combos.py --data DIR --trials 12
--time-budget 120``.
"""

from __future__ import annotations

import optuna

from atlas_core.config import RunConfig
from atlas_core.sweep import choose_plugins, set_param

# every pair here either composes or is left out (two fields, or two encodings, clash)
SETS = [(), ("ngp",), ("voxel",), ("fourier",), ("mip",), ("volsdf",), ("volsdf", "mip")]

BASE = {"eval.views": 8, "eval.video_frames": 24}  # --set on the command line wins


def space(trial: optuna.Trial, config: RunConfig) -> None:
    """Plugin set first, then the parameters of the chosen set."""
    chosen = choose_plugins(trial, config, SETS)
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 2e-2, log=True))
    if "ngp" in chosen:
        set_param(config, "field.log2_table", trial.suggest_int("ngp.log2_table", 14, 19))
        set_param(config, "field.hidden", trial.suggest_categorical("ngp.hidden", [32, 64]))
        set_param(config, "sampler", "occupancy")
    elif "voxel" in chosen:
        resolution = trial.suggest_categorical("voxel.resolution", [96, 128, 160])
        set_param(config, "field.resolution", resolution)
    elif "volsdf" in chosen:
        set_param(config, "field.width", trial.suggest_categorical("volsdf.width", [64, 128]))
        eikonal = trial.suggest_float("volsdf.eikonal", 0.01, 0.3, log=True)
        set_param(config, "losses.eikonal", eikonal)
    else:  # the core's tiny MLP, with positional, Fourier or integrated encodings
        set_param(config, "field.width", trial.suggest_categorical("tiny.width", [64, 128]))
    if "fourier" in chosen:
        sigma = trial.suggest_float("fourier.sigma", 1.0, 16.0, log=True)
        set_param(config, "encoding.sigma", sigma)
    if "mip" in chosen:
        frequencies = trial.suggest_int("mip.frequencies", 8, 12)
        set_param(config, "encoding.frequencies", frequencies)
