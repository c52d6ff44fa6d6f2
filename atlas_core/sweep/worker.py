"""Sweep workers: each asks the shared study for trials until N have finished.

The count is exact however many workers (on however many machines) share a study: a
worker starts a trial only while fewer than N trials are finished or running, and a
trial that finds N unfailed trials numbered before it (two workers asked at once) is
dropped as surplus before it trains. While the last trials run elsewhere, an idle
worker waits, so it can rerun one that fails or is retried after its worker died.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from atlas_core.errors import AtlasError, first_line
from atlas_core.sweep import storage
from atlas_core.sweep.objective import Settings, run_trial
from atlas_core.sweep.space import read_study_file
from atlas_core.sweep.tracking import WandbTrialCallback

__all__ = [
    "FINISHED",
    "MAX_FAILURES",
    "POLL",
    "SURPLUS",
    "Surplus",
    "counts",
    "needed",
    "report_line",
    "run_workers",
    "unfailed_before",
    "work",
    "worker_threads",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL = 2.0  # seconds between looks at the study while others finish the last trials
MAX_FAILURES = 3  # failed trials in a row that stop a worker
SURPLUS = "surplus"  # user attr of a dropped trial


class Surplus(Exception):  # noqa: N818 - a trial that is not needed
    """Raised by a trial that would take the study past N."""


class _QuietSurplus(logging.Filter):
    """Drops Optuna's failure warnings (and traceback) for trials dropped as surplus."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(f"Trial {n} failed") for n in self.numbers)


def counts(study: optuna.Study) -> dict[TrialState, int]:
    """Trials by state."""
    found = {state: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        found[trial.state] += 1
    return found


def unfailed_before(number: int, trials: list[optuna.trial.FrozenTrial]) -> int:
    """How many of ``trials`` numbered before ``number`` have not failed."""
    return sum(1 for t in trials if t.number < number and t.state != TrialState.FAIL)


def needed(trial: optuna.Trial, total: int) -> bool:
    """False when ``total`` unfailed trials were created before this one."""
    return unfailed_before(trial.number, trial.study.get_trials(deepcopy=False)) < total


def report_line(trial: optuna.trial.FrozenTrial) -> str:
    """One line per finished trial on the worker's stdout."""
    attrs = trial.user_attrs
    psnr = attrs.get("psnr")
    shown = f"PSNR {psnr:.2f} dB" if isinstance(psnr, float) else attrs.get("error", "")
    seconds = attrs.get("train_seconds", 0.0)
    plugins = attrs.get("plugins", "?")
    return f"trial {trial.number}: {trial.state.name} {shown} ({plugins}, {seconds:.0f} s)"


def worker_threads(workers: int) -> int:
    """Torch threads per worker: OMP_NUM_THREADS when set, else the cores shared out."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def work(settings: Settings, worker: int = 0) -> int:
    """Run trials until the study has ``settings.trials`` finished ones; 0 on success.

    ``MAX_FAILURES`` failed trials in a row (a broken study or plugin) raise an AtlasError.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(worker_threads(settings.workers))
    study_file = read_study_file(settings.study_path)
    study = storage.load_study(
        settings.storage, settings.study_name, settings.pruner, settings.grace
    )
    callbacks: list[Callable] = [lambda s, t: print(report_line(t), flush=True)]
    if settings.logger == "wandb":
        callbacks.insert(0, WandbTrialCallback())
    quiet = _QuietSurplus()
    logging.getLogger("optuna.study._optimize").addFilter(quiet)
    failures = 0
    last: list[int] = []  # the number of the trial this worker ran last

    def objective(trial: optuna.Trial) -> float:
        last[:] = [trial.number]
        if not needed(trial, settings.trials):
            trial.set_user_attr(SURPLUS, True)
            quiet.numbers.add(trial.number)
            raise Surplus(f"trial {trial.number} not needed: {settings.trials} already taken")
        try:
            return run_trial(trial, study_file, settings)
        except AtlasError as exc:
            trial.set_user_attr("error", str(exc))
            raise

    while True:
        found = counts(study)
        done = sum(found[s] for s in FINISHED)
        if done >= settings.trials:
            return 0
        if done + found[TrialState.RUNNING] >= settings.trials and not found[TrialState.WAITING]:
            time.sleep(POLL)  # the last trials run elsewhere; one may fail and need a rerun
            with warnings.catch_warnings():  # "experimental" in Optuna; no-op without heartbeat
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            continue
        study.optimize(objective, n_trials=1, callbacks=callbacks, catch=(Exception,))
        if not last:
            continue
        ran = next(t for t in study.get_trials(deepcopy=False) if t.number == last[0])
        failed = ran.state == TrialState.FAIL and not ran.user_attrs.get(SURPLUS)
        failures = failures + 1 if failed else 0
        if failures >= MAX_FAILURES:
            error = ran.user_attrs.get("error", "see the traceback above")
            raise AtlasError(
                f"worker {worker}: {MAX_FAILURES} trials failed in a row, stopping; "
                f"last error: {error}"
            )


def _worker_main(settings: Settings, worker: int, log: str) -> None:
    """Entry of a worker process: progress bars to its log, one line per trial to stdout."""
    sys.stderr = open(log, "a", buffering=1)  # noqa: SIM115 - the process's stderr
    try:
        code = work(settings, worker)
    except AtlasError as exc:
        print(f"atlas: error: {exc}", file=sys.__stderr__, flush=True)
        code = 2
    except Exception as exc:  # noqa: BLE001 - reported, and the exit code says so
        print(f"worker {worker} crashed: {first_line(exc)}", file=sys.__stderr__, flush=True)
        raise
    sys.exit(code)


def run_workers(settings: Settings) -> int:
    """Run ``settings.workers`` worker processes (or work here for one); the worst exit code."""
    if settings.workers <= 1:
        return work(settings)
    logs = Path(settings.sweep_dir) / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(settings, k, str(logs / f"worker-{k}.log")))
        for k in range(settings.workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return max(process.exitcode or 0 for process in processes)
