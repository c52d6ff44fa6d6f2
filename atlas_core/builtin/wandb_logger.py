"""Built-in plugin ``wandb``: logs a run to Weights & Biases (``--logger wandb``).

Offline unless ``WANDB_MODE`` says otherwise: runs land in ``RUN_DIR/wandb/offline-run-*``
and ``wandb sync`` uploads them later.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from atlas_core import hookimpl

if TYPE_CHECKING:
    from atlas_core.train import Trainer

_runs: dict[int, Any] = {}


@hookimpl
def atlas_train_start(trainer: Trainer) -> None:
    """Open one W&B run for this trainer, with the config and plugin versions."""
    import wandb

    trainer.out.mkdir(parents=True, exist_ok=True)
    config = trainer.config
    _runs[id(trainer)] = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "nerf-atlas"),
        name=config.name or trainer.out.name,
        dir=str(trainer.out),
        mode=os.environ.get("WANDB_MODE", "offline"),
        config={**config.to_dict(), "plugin_versions": trainer.plugins.versions},
        resume="allow",
        reinit="create_new",
    )


@hookimpl
def atlas_train_step_end(trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
    """Log loss terms and learning rate every ``train.log_every`` steps."""
    run = _runs.get(id(trainer))
    if run is not None and step % trainer.config.train.log_every == 0:
        run.log({f"train/{k}": v for k, v in metrics.items()}, step=step)


@hookimpl
def atlas_eval_end(trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
    """Log evaluation PSNR and SSIM, and the first rendered test image if written."""
    import wandb

    run = _runs.get(id(trainer))
    if run is None:
        return
    values: dict[str, Any] = {"eval/psnr": metrics["psnr"], "eval/ssim": metrics["ssim"]}
    images = sorted((trainer.out / "test").glob("*_pred.png"))
    if images:
        values["eval/image"] = wandb.Image(str(images[0]))
    run.log(values, step=step)


@hookimpl
def atlas_train_end(trainer: Trainer, metrics: dict[str, Any]) -> None:
    """Log the summary and the turntable video, then close the run."""
    import wandb

    run = _runs.pop(id(trainer), None)
    if run is None:
        return
    run.summary.update({"test/psnr": metrics["test"]["psnr"], "test/ssim": metrics["test"]["ssim"]})
    video = trainer.out / "video.mp4"
    if video.exists():
        run.log({"video": wandb.Video(str(video), format="mp4")}, step=trainer.step)
    run.finish()
