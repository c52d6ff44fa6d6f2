"""A sweep's results: table on stdout and in summary.md, best.toml, parameter importances."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from atlas_core.config import RunConfig, load_toml, save_toml
from atlas_core.io import atomic_write_bytes
from atlas_core.sweep.worker import SURPLUS, unfailed_before

__all__ = [
    "COLUMNS",
    "best_trial",
    "importances",
    "markdown_table",
    "shown_trials",
    "summarize",
    "table_rows",
    "write_best",
]

COLUMNS = ("trial", "state", "plugins", "params", "PSNR", "time (s)", "value")


def shown_trials(study: optuna.Study, total: int | None = None) -> list[FrozenTrial]:
    """Every trial except those dropped as surplus, in order.

    With ``total`` (the sweep's N), an unfinished trial that ``total`` unfailed trials
    precede is left out too: another worker created it and is about to drop it.
    """
    trials = study.get_trials(deepcopy=False)
    shown = [t for t in trials if not t.user_attrs.get(SURPLUS)]
    if total is None:
        return shown
    return [t for t in shown if t.state.is_finished() or unfailed_before(t.number, trials) < total]


def _value(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def _params(trial: FrozenTrial) -> str:
    parts = []
    for key, value in trial.params.items():
        if key == "plugins":
            continue
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts) or "-"


def table_rows(trials: list[FrozenTrial]) -> list[tuple[str, ...]]:
    """One row per trial, in COLUMNS order."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        rows.append(
            (
                str(trial.number),
                trial.state.name,
                str(attrs.get("plugins", trial.params.get("plugins", "?"))),
                _params(trial),
                _value(attrs.get("psnr"), 2),
                _value(attrs.get("train_seconds"), 1),
                _value(trial.value, 4),
            )
        )
    return rows


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """A GitHub-style markdown table of the rows under COLUMNS."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def importances(study: optuna.Study) -> dict[str, float] | str:
    """fANOVA parameter importances, or why there are none (too few finished trials)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"not enough completed trials ({len(complete)}; needs at least 2)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        return f"not available: {exc}"
    return dict(found) or "not available: no parameter took more than one value"


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial, if any."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


def write_best(trial: FrozenTrial, path: Path) -> Path:
    """The best trial's config, renamed, as a config ``atlas run --config`` reruns.

    The trial keeps its config in the study, so any host sharing the study can write it.
    """
    saved = trial.user_attrs.get("config")
    if saved is None:  # a trial of an older sweep
        config = load_toml(Path(trial.user_attrs["run_dir"]) / "config.toml")
    else:
        config = RunConfig.from_dict(saved, source=f"trial {trial.number}")
    config.name = ""
    config.versions = {}
    config.logger = "none"  # the sweep's logging is no part of the configuration
    save_toml(config, path)
    return path


def summarize(
    study: optuna.Study, sweep_dir: Path, objective: str, total: int | None = None
) -> str:
    """Write summary.md and best.toml for a sweep of ``total`` trials; return the text."""
    rows = table_rows(shown_trials(study, total))
    lines = [f"# Sweep `{study.study_name}`", "", markdown_table(rows), ""]
    best = best_trial(study)
    if best is None:
        lines.append("No trial completed, so there is no best configuration.")
    else:
        best_path = write_best(best, sweep_dir / "best.toml")
        psnr = best.user_attrs.get("psnr")
        lines += [
            f"Best: trial {best.number} ({best.user_attrs.get('plugins', '?')}), "
            f"{objective} = {best.value:.4f}, test PSNR {_value(psnr, 2)} dB; "
            f"rerun with `atlas run --config {best_path}`",
        ]
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    lines += ["", f"## Parameter importances (fANOVA, {complete} completed trials)", ""]
    found = importances(study)
    if isinstance(found, str):
        lines.append(f"Parameter importances: {found}.")
    else:
        lines += [f"- `{name}`: {value:.3f}" for name, value in found.items()]
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(sweep_dir / "summary.md", text.encode())  # other workers may write it
    return text
