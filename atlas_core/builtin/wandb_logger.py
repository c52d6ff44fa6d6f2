"""Built-in plugin ``wandb``: logs a run to Weights & Biases (``--logger wandb``).

Offline unless ``WANDB_MODE`` says otherwise: runs land in ``RUN_DIR/wandb/offline-run-*``
and ``wandb sync`` uploads them later. Logged: the config with plugin versions, loss
terms and learning rate every ``train.log_every`` steps, PSNR/SSIM at each evaluation,
the test images of the final one, and the turntable video (by file path: imageio wrote
it, so W&B needs no moviepy). ``WANDB_RUN_GROUP`` groups runs. A caller that opened a
run itself (a sweep trial) hands it over with ``use_run``; it then closes it too.
In a data-parallel run only rank 0 logs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from atlas_core import hookimpl

if TYPE_CHECKING:
    from atlas_core.train import Trainer

MAX_IMAGES = 4  # test images logged from the final evaluation

_runs: dict[int, tuple[Any, bool]] = {}  # id(trainer) -> (run, opened here)
_handed: list[Any] = []  # a run opened by the caller, for the next trainer


def use_run(run: Any) -> None:
    """Make the next trainer log to ``run`` (already open) instead of starting one."""
    _handed[:] = [run]


@hookimpl
def atlas_train_start(trainer: Trainer) -> None:
    """Open (or adopt) one W&B run for this trainer, with the config and plugin versions."""
    import wandb

    if not trainer.main or id(trainer) in _runs:  # rank 0 only; once after a resume
        return
    config = {**trainer.config.to_dict(), "plugin_versions": trainer.plugins.versions}
    if _handed:
        run = _handed.pop()
        run.config.update(config, allow_val_change=True)
        _runs[id(trainer)] = (run, False)
        return
    trainer.out.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "nerf-atlas"),
        group=os.environ.get("WANDB_RUN_GROUP") or None,
        name=trainer.config.name or trainer.out.name,
        dir=str(trainer.out),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config=config,
        resume="allow",
        reinit="create_new",
    )
    _runs[id(trainer)] = (run, True)


def _run(trainer: Trainer) -> Any:
    entry = _runs.get(id(trainer))
    return entry[0] if entry else None


@hookimpl
def atlas_train_step_end(trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
    """Log loss terms and learning rate every ``train.log_every`` steps."""
    run = _run(trainer)
    if run is not None and step % trainer.config.train.log_every == 0:
        run.log({f"train/{k}": v for k, v in metrics.items()}, step=step)


@hookimpl
def atlas_eval_end(trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
    """Log evaluation PSNR and SSIM, and the rendered test images once written."""
    import wandb

    run = _run(trainer)
    if run is None:
        return
    values: dict[str, Any] = {"eval/psnr": metrics["psnr"], "eval/ssim": metrics["ssim"]}
    if trainer.done():  # the final evaluation writes images; intermediate ones do not
        images = sorted((trainer.out / "test").glob("*_pred.png"))[:MAX_IMAGES]
        if images:
            values["eval/images"] = [wandb.Image(str(path), caption=path.stem) for path in images]
    run.log(values, step=step)


@hookimpl
def atlas_train_end(trainer: Trainer, metrics: dict[str, Any]) -> None:
    """Log the summary and the turntable video; close the run if it was opened here."""
    import wandb

    run, owned = _runs.pop(id(trainer), (None, False))
    if run is None:
        return
    test = metrics["test"]
    run.summary.update(
        {
            "test/psnr": test["psnr"],
            "test/ssim": test["ssim"],
            "train_seconds": metrics["train_seconds"],
            "steps": metrics["steps"],
        }
    )
    video = trainer.out / "video.mp4"
    if video.exists():
        run.log({"video": wandb.Video(str(video), format="mp4")}, step=trainer.step)
    if owned:
        run.finish()
