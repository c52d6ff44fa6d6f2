"""Weights & Biases for sweeps: one run per trial, closed by an Optuna callback.

Our own small callback (optuna-integration's W&B callback is deprecated). The sweep
opens the trial's run before training, grouped by study name with the trial's params;
the built-in ``wandb`` logger adopts that run and logs loss, learning rate, PSNR,
images and the turntable video; after the trial ends, ``WandbTrialCallback`` records
its state and value and finishes the run, also for pruned and failed trials.
Offline unless ``WANDB_MODE`` says otherwise (``wandb sync`` uploads later).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna

from atlas_core.builtin import wandb_logger
from atlas_core.config import RunConfig

__all__ = ["WandbTrialCallback", "open_trial_run"]

_current: Any = None  # this worker's open trial run


def open_trial_run(
    trial: optuna.Trial, config: RunConfig, out: Path, group: str, versions: dict[str, str]
) -> Any:
    """Start the trial's W&B run (offline by default) in its run folder."""
    import wandb

    global _current
    out.mkdir(parents=True, exist_ok=True)
    _current = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "nerf-atlas"),
        group=group,
        name=config.name,
        job_type="trial",
        dir=str(out),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config={
            "trial": trial.number,
            "params": dict(trial.params),
            "plugins": list(config.plugins),
            "plugin_versions": versions,
        },
        reinit="create_new",
    )
    wandb_logger.use_run(_current)
    return _current


class WandbTrialCallback:
    """Optuna callback: write the finished trial's state and value, then close its run."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Called by Optuna after each trial of this worker."""
        global _current
        run, _current = _current, None
        if run is None:
            return
        run.summary.update(
            {
                "trial/state": trial.state.name,
                "trial/value": trial.value,
                "trial/number": trial.number,
                **{f"params/{k}": v for k, v in trial.params.items()},
            }
        )
        failed = trial.state == optuna.trial.TrialState.FAIL
        run.finish(exit_code=1 if failed else 0)
