"""One trial: a full ``atlas run`` in its own folder, reporting PSNR for pruning.

The trial's reporter is an in-process plugin. It evaluates at ``RUNGS - 1`` evenly spaced
points of the run (by training time under a time budget, else by steps) on
``INTERMEDIATE_VIEWS`` test views, the final evaluation (``eval.views``) being the last
rung; each evaluation reaches it through ``atlas_eval_end``, where it calls
``trial.report`` and asks the pruner whether to stop. Every trial is evaluated at the
same rungs on the same views, so the pruner compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from atlas_core import hookimpl
from atlas_core.config import RunConfig, apply_overrides
from atlas_core.engine.run import Run
from atlas_core.engine.trainer import Trainer
from atlas_core.plugins import load
from atlas_core.sweep.space import Study, plugin_set_name
from atlas_core.sweep.tracking import open_trial_run

__all__ = [
    "INTERMEDIATE_VIEWS",
    "NO_BUDGET_STEPS",
    "PruneTrial",
    "RUNGS",
    "Settings",
    "TrialReporter",
    "objective_value",
    "run_trial",
    "trial_config",
]

RUNGS = 4  # intermediate values per trial, the last one the final evaluation
INTERMEDIATE_VIEWS = 2  # test views of the evaluations before the final one (same for all)
NO_BUDGET_STEPS = 10_000_000  # under a time budget the budget ends the run, not the steps


class PruneTrial(BaseException):  # noqa: N818 - a signal, not an error
    """Raised from a hook to stop a trial; BaseException so plugin-error wrapping lets it by."""


@dataclass
class Settings:
    """What every trial of a sweep shares (picklable: workers get a copy)."""

    study_path: str
    study_name: str
    storage: str
    sweep_dir: str
    data: str
    trials: int
    workers: int = 1
    time_budget: float | None = None
    objective: str = "psnr"
    pruner: str = "median"
    logger: str = "wandb"
    grace: int = 60  # seconds without a heartbeat before a running trial counts as dead
    overrides: list[str] = field(default_factory=list)


def objective_value(name: str, psnr: float, seconds: float) -> float:
    """PSNR, or PSNR per training second."""
    return psnr / max(seconds, 1e-9) if name == "psnr_per_second" else psnr


class TrialReporter:
    """In-process plugin: intermediate evaluations, ``trial.report`` and pruning.

    Part of the core, it drives the trainer it is attached to (``attach``): plugins get
    only the ``Run`` handle, which cannot start an evaluation.
    """

    name = "sweep"

    def __init__(self, trial: optuna.Trial, objective: str):
        self.trial, self.objective = trial, objective
        self.rung = 0  # rungs reported so far
        self.pending = False  # an evaluation this reporter asked for
        self.trainer: Trainer | None = None

    def attach(self, trainer: Trainer) -> None:
        """The trainer whose run this reporter evaluates and reports."""
        self.trainer = trainer

    def progress(self, trainer: Trainer) -> float:
        """Fraction of the run done, by time budget when set, else by steps."""
        train = trainer.config.train
        if train.time_budget > 0:
            return trainer.train_seconds / train.time_budget
        return trainer.step / train.max_steps

    @hookimpl(trylast=True)  # after loggers (trylast too, loaded first): they log the step
    def atlas_train_step_end(self, step: int) -> None:
        """Evaluate when the run passes the next intermediate rung."""
        trainer = self.trainer
        if trainer is None:
            return
        due = self.progress(trainer) >= (self.rung + 1) / RUNGS
        if self.rung < RUNGS - 1 and due and not trainer.done():  # done: finish() evaluates
            self.pending = True
            views = trainer.config.eval.views
            trainer.config.eval.views = min(views or INTERMEDIATE_VIEWS, INTERMEDIATE_VIEWS)
            try:
                trainer.evaluate(write_images=False)
            finally:
                trainer.config.eval.views = views

    @hookimpl(trylast=True)  # after loggers: a pruned rung is still logged
    def atlas_eval_end(self, run: Run, step: int, metrics: dict[str, Any]) -> None:
        """Report this rung's objective value; stop the run if the pruner says so."""
        final = run.finished
        if not (self.pending or final):
            return  # an evaluation of the user's train.eval_every
        self.pending = False
        self.rung = RUNGS if final else self.rung + 1
        value = objective_value(self.objective, metrics["psnr"], run.train_seconds)
        self.trial.report(value, self.rung)
        self.trial.set_user_attr("psnr", metrics["psnr"])
        self.trial.set_user_attr("train_seconds", run.train_seconds)
        self.trial.set_user_attr("steps", run.step)
        if not final and self.trial.should_prune():
            raise PruneTrial(f"pruned at rung {self.rung} (step {step})")


def trial_config(trial: optuna.Trial, study: Study, settings: Settings) -> RunConfig:
    """The study's base settings, the trial's choices, then the sweep's ``--set`` options."""
    config = RunConfig()
    config.data.path = settings.data
    for key, value in study.base.items():
        config.set(key, value, source=f"{study.path}: BASE")
    if settings.time_budget is not None:
        config.set("train.time_budget", settings.time_budget, source="--time-budget")
        config.set("train.max_steps", NO_BUDGET_STEPS, source="--time-budget")
    study.space(trial, config)
    apply_overrides(config, settings.overrides)
    config.name = f"trial-{trial.number:04d}"
    config.logger = settings.logger  # type: ignore[assignment]
    return config


def run_trial(trial: optuna.Trial, study: Study, settings: Settings) -> float:
    """Train and evaluate one trial in ``SWEEP/trials/trial-NNNN``; returns its value."""
    config = trial_config(trial, study, settings)
    out = Path(settings.sweep_dir) / "trials" / config.name
    trial.set_user_attr("run_dir", str(out))
    trial.set_user_attr("config", config.to_dict())  # best.toml on any host, not only this one
    trial.set_user_attr("plugins", plugin_set_name(config.plugins))
    reporter = TrialReporter(trial, settings.objective)
    builtins = ("wandb",) if config.logger == "wandb" else ()
    plugins = load(config.plugins, extra=[("sweep", reporter)], builtins=builtins)
    if config.logger == "wandb":
        open_trial_run(trial, config, out, settings.study_name, plugins.versions)
    trainer = Trainer(config, plugins, out)
    reporter.attach(trainer)
    out.mkdir(parents=True, exist_ok=True)
    trainer.write_config()
    try:
        trainer.fit()
    except PruneTrial as exc:
        raise optuna.TrialPruned(str(exc)) from None
    metrics = trainer.finish()
    test = metrics["test"]
    trial.set_user_attr("psnr", test["psnr"])
    trial.set_user_attr("ssim", test["ssim"])
    return objective_value(settings.objective, test["psnr"], metrics["train_seconds"])
