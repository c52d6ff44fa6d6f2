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
    from atlas_core.engine.run import Run

__all__ = ["MAX_IMAGES", "use_run"]

MAX_IMAGES = 4  # test images logged from the final evaluation
KEY = "wandb"  # this logger's entry in run.store: (W&B run, opened here)

_handed: list[Any] = []  # a run opened by the caller, for the next training run


def use_run(run: Any) -> None:
    """Make the next training run log to ``run`` (already open) instead of starting one."""
    _handed[:] = [run]


@hookimpl
def atlas_train_start(run: Run) -> None:
    """Open (or adopt) one W&B run for this run, with the config and plugin versions."""
    import wandb

    if not run.main or KEY in run.store:  # rank 0 only; once after a resume
        return
    config = {**run.config.to_dict(), "plugin_versions": run.versions}
    if _handed:
        logged = _handed.pop()
        logged.config.update(config, allow_val_change=True)
        run.store[KEY] = (logged, False)
        return
    run.out.mkdir(parents=True, exist_ok=True)
    logged = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "nerf-atlas"),
        group=os.environ.get("WANDB_RUN_GROUP") or None,
        name=run.config.name or run.out.name,
        dir=str(run.out),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config=config,
        resume="allow",
        reinit="create_new",
    )
    run.store[KEY] = (logged, True)


def _logged(run: Run) -> Any:
    entry = run.store.get(KEY)
    return entry[0] if entry else None


@hookimpl(trylast=True)
def atlas_train_step_end(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Log loss terms, learning rate and plugins' metrics every ``train.log_every`` steps."""
    logged = _logged(run)
    if logged is not None and step % run.config.train.log_every == 0:
        logged.log({f"train/{k}": v for k, v in metrics.items()}, step=step)


@hookimpl(trylast=True)
def atlas_eval_end(run: Run, step: int, metrics: dict[str, Any]) -> None:
    """Log evaluation PSNR and SSIM, and the rendered test images once written."""
    import wandb

    logged = _logged(run)
    if logged is None:
        return
    values: dict[str, Any] = {"eval/psnr": metrics["psnr"], "eval/ssim": metrics["ssim"]}
    if run.finished:  # the final evaluation writes images; intermediate ones do not
        images = sorted((run.out / "test").glob("*_pred.png"))[:MAX_IMAGES]
        if images:
            values["eval/images"] = [wandb.Image(str(path), caption=path.stem) for path in images]
    logged.log(values, step=step)


@hookimpl(trylast=True)
def atlas_train_end(run: Run, metrics: dict[str, Any]) -> None:
    """Log the summary and the turntable video; close the W&B run if it was opened here."""
    import wandb

    logged, owned = run.store.pop(KEY, (None, False))
    if logged is None:
        return
    test = metrics["test"]
    logged.summary.update(
        {
            "test/psnr": test["psnr"],
            "test/ssim": test["ssim"],
            "train_seconds": metrics["train_seconds"],
            "steps": metrics["steps"],
        }
    )
    video = run.out / "video.mp4"
    if video.exists():
        logged.log({"video": wandb.Video(str(video), format="mp4")}, step=run.step)
    if owned:
        logged.finish()
