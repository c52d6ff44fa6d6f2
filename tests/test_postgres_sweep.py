"""Sweeps on PostgreSQL servers started for the test (Optuna RDB storage).

Two workers of one ``atlas sweep``, and four ``atlas sweep`` processes started at the
same moment on a new database (they race to create Optuna's schema and the study).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from pgserver import postgres

from atlas_core.cli import main
from atlas_core.sweep.storage import open_storage

STUDY = '''"""Tiny study: the core MLP's learning rate."""

from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
'''
TINY = [
    "--set", "train.max_steps=12", "--set", "eval.views=1", "--set", "train.batch_rays=128",
    "--set", "sampler.samples=8", "--set", "eval.video_frames=0", "--set", "field.width=8",
]  # fmt: skip


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server with trust auth on 127.0.0.1."""
    with postgres() as (port, _):
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


def finished_once(study: optuna.Study, total: int) -> list[optuna.trial.FrozenTrial]:
    """The study's real trials, checked: ``total`` finished, each in its own folder.

    A trial two workers create in the same instant past N is failed and tagged "surplus".
    """
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state == TrialState.FAIL for t in surplus)
    real = [t for t in study.trials if not t.user_attrs.get("surplus")]
    states = [t.state for t in real]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == total, states
    assert len(real) == total, states
    assert len({t.user_attrs["run_dir"] for t in real}) == total
    return real


@pytest.mark.slow
def test_two_workers_on_postgres(postgres_url: str, atlas_scene: Path, tmp_path: Path) -> None:
    """Study created once, 2 worker processes, exactly 3 finished trials, none repeated."""
    study_file = tmp_path / "pg_study.py"
    study_file.write_text(STUDY)
    argv = ["sweep", str(study_file), "--data", str(atlas_scene), "--trials", "3"]
    argv += ["--workers", "2", "--storage", postgres_url, "--logger", "none"]
    assert main([*argv, "--out", str(tmp_path / "sweep"), *TINY]) == 0
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    finished_once(optuna.load_study(study_name="pg_study", storage=url), 3)
    assert (tmp_path / "sweep" / "summary.md").is_file()


def start_together(url: str, scene: Path, folder: Path, processes: int, trials: int) -> None:
    """Start ``processes`` ``atlas sweep`` on one study at the same moment; all must succeed."""
    study_file = folder / "race.py"
    study_file.write_text(STUDY)
    argv = [sys.executable, "-m", "atlas_core", "sweep", str(study_file), "--data", str(scene)]
    argv += ["--trials", str(trials), "--storage", url, "--logger", "none", "--pruner", "none"]
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    procs = [
        subprocess.Popen(
            [*argv, *TINY, "--out", str(folder / f"host{k}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(processes)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert "atlas: error" not in err and "Traceback" not in err, err[-2000:]
    for k in range(processes):  # every process wrote the summary of the whole study
        summary = (folder / f"host{k}" / "summary.md").read_text()
        assert summary.count("\n| ") == 1 + trials


def check_race(study: optuna.Study, trials: int) -> None:
    """Exactly ``trials`` completed, each with its own parameters and folder."""
    real = finished_once(study, trials)
    assert all(t.state == TrialState.COMPLETE for t in real)
    assert len({t.params["lr"] for t in real}) == trials  # none repeated


@pytest.mark.cluster
def test_four_sweeps_start_together(postgres_url: str, atlas_scene: Path, tmp_path: Path) -> None:
    """4 ``atlas sweep`` processes at once on a new PostgreSQL database finish 6 trials."""
    start_together(postgres_url, atlas_scene, tmp_path, processes=4, trials=6)
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    check_race(optuna.load_study(study_name="race", storage=url), 6)


@pytest.mark.cluster
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_four_sweeps_on_a_new_file(kind: str, atlas_scene: Path, tmp_path: Path) -> None:
    """The same race on a new SQLite file (a file lock) and a journal (Optuna's own lock)."""
    path = tmp_path / "store" / f"race.{kind}"
    url = f"sqlite:///{path}" if kind == "sqlite" else f"journal:{path}"
    start_together(url, atlas_scene, tmp_path, processes=4, trials=6)
    check_race(optuna.load_study(study_name="race", storage=open_storage(url)), 6)
