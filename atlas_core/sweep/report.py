"""A sweep's ``report.html``: trials, PSNR against time per plugin set, history, importances.

One self-contained page (inline SVG, no script) beside ``summary.md``. Optuna's own
``optuna.visualization`` needs plotly or matplotlib, neither of which NeRF Atlas
installs; the same views are drawn here with the run report's SVG charts. Each trial
links to its own ``report.html`` when its run folder is on this machine.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from atlas_core.commands.report import STYLE, line_chart
from atlas_core.engine.history import read_history
from atlas_core.io import atomic_write_bytes
from atlas_core.sweep.results import COLUMNS, importances, shown_trials, table_rows

__all__ = ["write_sweep_report"]


def _trials_table(trials: list[FrozenTrial], sweep_dir: Path) -> str:
    """The summary's table, each trial number linked to its run report."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
    rows = [f"<tr>{head}<th>report</th></tr>"]
    for trial, row in zip(trials, table_rows(trials), strict=True):
        report = Path(trial.user_attrs.get("run_dir", "/nonexistent")) / "report.html"
        link = ""
        if report.is_file():
            target = html.escape(os.path.relpath(report, sweep_dir))
            link = f'<a href="{target}">report</a>'
        cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
        rows.append(f"<tr>{cells}<td>{link}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _psnr_against_time(trials: list[FrozenTrial]) -> str:
    """Every evaluation of every trial (history.jsonl where readable, else its final PSNR)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        points = series.setdefault(str(attrs.get("plugins", "?")), [])
        _, evals = read_history(Path(attrs.get("run_dir", "/nonexistent")) / "history.jsonl")
        if evals:
            points += [(e["seconds"], e["eval"]["psnr"]) for e in evals]
        elif isinstance(attrs.get("psnr"), float) and "train_seconds" in attrs:
            points.append((attrs["train_seconds"], attrs["psnr"]))
    title = "test PSNR (dB) of every evaluation, by plugin set"
    return line_chart(title, "training seconds", series, lines=False)


def _history(trials: list[FrozenTrial], objective: str) -> str:
    """Objective value by trial number, and the best so far."""
    finished = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    values = [(t.number, t.value) for t in finished]
    best, running = [], float("-inf")
    for number, value in values:
        running = max(running, value)
        best.append((number, running))
    return line_chart(
        f"optimisation history ({objective})", "trial", {"trial": values, "best so far": best}
    )


def _importances(study: optuna.Study) -> str:
    """fANOVA importances as bars, or why there are none."""
    found = importances(study)
    if isinstance(found, str):
        return f"<p>Parameter importances: {html.escape(found)}.</p>"
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td style='text-align:left'>"
        f"<span style='display:inline-block;background:#1f77b4;height:10px;"
        f"width:{300 * value:.0f}px'></span> {value:.3f}</td></tr>"
        for name, value in found.items()
    )
    return f"<table>{rows}</table>"


def write_sweep_report(
    study: optuna.Study, sweep_dir: Path, objective: str, total: int | None = None
) -> Path:
    """Write ``SWEEP/report.html`` for the study's trials as they are now."""
    trials = shown_trials(study, total)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    charts = [_psnr_against_time(done), _history(trials, objective)]
    page = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Sweep {html.escape(study.study_name)}</title><style>{STYLE}</style></head>",
        f"<body><h1>Sweep <code>{html.escape(study.study_name)}</code></h1>",
        f"<p>{len(done)} finished trials of {len(trials)}; objective {html.escape(objective)}."
        " Watch it live with <code>optuna-dashboard STORAGE_URL</code>.</p>",
        "<h2>Trials</h2>",
        _trials_table(trials, sweep_dir),
        "<h2>Curves</h2><div class='charts'>",
        *charts,
        "</div>",
        "<h2>Parameter importances (fANOVA)</h2>",
        _importances(study),
        "</body></html>",
    ]
    path = Path(sweep_dir) / "report.html"
    atomic_write_bytes(path, "\n".join(page).encode())
    return path
