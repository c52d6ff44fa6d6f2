"""``atlas sweep``: create the study, run the workers, summarise the results."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from atlas_core.config import RunConfig, apply_overrides
from atlas_core.errors import AtlasError
from atlas_core.sweep import storage
from atlas_core.sweep.objective import Settings
from atlas_core.sweep.report import write_sweep_report
from atlas_core.sweep.results import summarize
from atlas_core.sweep.space import read_study_file
from atlas_core.sweep.worker import run_workers

__all__ = ["settings_from", "sweep"]


def settings_from(args: argparse.Namespace) -> Settings:
    """Check the options and turn them into the workers' Settings."""
    if args.trials < 1:
        raise AtlasError(f"--trials must be >= 1, got {args.trials}")
    if args.workers < 1:
        raise AtlasError(f"--workers must be >= 1, got {args.workers}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise AtlasError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    if args.grace < 3:
        raise AtlasError(f"--grace must be >= 3 seconds, got {args.grace}")
    if not Path(args.data).is_dir():
        raise AtlasError(f"--data {args.data}: not a folder")
    apply_overrides(RunConfig(), args.overrides)  # a bad --set fails here, not in a trial
    study = read_study_file(args.study)
    study.check_plugins()
    name = args.study_name or study.name
    if not re.fullmatch(r"[\w.-]+", name):
        raise AtlasError(f"--study-name {name!r}: use letters, digits, '.', '_' or '-'")
    sweep_dir = Path(args.out or f"outputs/sweep-{name}")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return Settings(
        study_path=str(study.path),
        study_name=name,
        storage=args.storage or storage.default_url(sweep_dir),
        sweep_dir=str(sweep_dir),
        data=args.data,
        trials=args.trials,
        workers=args.workers,
        time_budget=args.time_budget,
        objective=args.objective,
        pruner=args.pruner,
        logger=args.logger,
        grace=args.grace,
        overrides=list(args.overrides),
    )


def sweep(args: argparse.Namespace) -> int:
    """Run (or resume) a sweep and print its summary; non-zero when a worker failed."""
    settings = settings_from(args)
    study = storage.create_study(
        settings.storage, settings.study_name, settings.pruner, settings.grace
    )
    print(
        f"sweep {settings.study_name}: {settings.trials} trials, {settings.workers} worker(s), "
        f"storage {settings.storage}, folder {settings.sweep_dir}",
        flush=True,
    )
    try:
        code = run_workers(settings)
    except AtlasError as exc:  # trials kept failing: still show what ran
        print(f"atlas: error: {exc}", file=sys.stderr, flush=True)
        code = 2
    folder = Path(settings.sweep_dir)
    print(summarize(study, folder, settings.objective, settings.trials))
    report = write_sweep_report(study, folder, settings.objective, settings.trials)
    print(f"report: {report}")
    return code
