"""End-to-end sweeps: journal storage with 2 workers and W&B offline; SQLite resume."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_wandb_logger import wandb_record

from atlas_core.cli import main
from atlas_core.config import load_toml
from atlas_core.sweep.objective import RUNGS

STUDY = '''"""Tiny study for tests: the core MLP's width and learning rate."""

from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "field.width", trial.suggest_categorical("width", [8, 16]))
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
'''
TINY = [
    "--set", "train.max_steps=16", "--set", "eval.views=1", "--set", "train.batch_rays=128",
    "--set", "sampler.samples=8", "--set", "eval.video_frames=2", "--set", "train.log_every=4",
]  # fmt: skip
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    """The tiny study written to a file."""
    path = tmp_path / "tiny_study.py"
    path.write_text(STUDY)
    return path


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that completed or were pruned."""
    return study.get_trials(states=FINISHED)


@pytest.mark.slow
def test_two_workers_journal_wandb(
    study_file: Path, atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """4 trials, 2 worker processes: all finish once, each with one offline W&B run."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    out, journal = tmp_path / "sweep", tmp_path / "journal.log"
    argv = ["sweep", str(study_file), "--data", str(atlas_scene), "--trials", "4"]
    argv += ["--workers", "2", "--storage", f"journal:{journal}", "--out", str(out), *TINY]
    assert main(argv) == 0
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name="tiny_study", storage=storage)
    done = finished(study)
    assert len(done) == 4
    # nothing failed; a trial two workers create in the same instant past N is tagged
    extra = [t for t in study.trials if t not in done]
    assert all(t.state == TrialState.FAIL and t.user_attrs.get("surplus") for t in extra)
    run_dirs = {t.user_attrs["run_dir"] for t in done}
    assert len(run_dirs) == 4
    for trial in done:
        runs = list((Path(trial.user_attrs["run_dir"]) / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, trial.number
        keys = (b"tiny_study", b"train/lr", b"eval/psnr", b"trial/state")
        record = wandb_record(runs[0], keys)
        for key in keys:
            assert key in record, (trial.number, key)
        if trial.state == TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == list(range(1, RUNGS + 1))
            assert list(runs[0].glob("files/media/videos/*.mp4"))
    text = capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    assert summary in text
    assert summary.count("\n| ") == 1 + 4  # header and one row per trial
    assert "Parameter importances" in summary
    report = (out / "report.html").read_text()
    complete = [t for t in done if t.state == TrialState.COMPLETE]  # pruned ones stop early
    assert report.count('<a href="trials/trial-') == len(complete) > 0  # their own reports
    for trial in complete:
        assert (Path(trial.user_attrs["run_dir"]) / "report.html").is_file()
    assert report.count("<svg") == 2 and "optimisation history" in report
    assert "by plugin set" in report and "<circle" in report
    assert len(list((out / "workers").glob("worker-*.log"))) == 2
    best = load_toml(out / "best.toml")
    assert best.field.options["width"] in (8, 16) and best.logger == "none"
    assert main(["run", "--config", str(out / "best.toml"), "--out", str(tmp_path / "again")]) == 0


@pytest.mark.slow
def test_sqlite_budget_objective_resume(
    study_file: Path, atlas_scene: Path, tmp_path: Path, capsys
) -> None:
    """Default SQLite storage, time budget, PSNR/s, halving; a rerun resumes to N trials."""
    out = tmp_path / "sweep"
    argv = ["sweep", str(study_file), "--data", str(atlas_scene), "--out", str(out), *TINY]
    argv += ["--study-name", "budget", "--time-budget", "0.5", "--objective", "psnr_per_second"]
    argv += ["--pruner", "halving", "--logger", "none", "--set", "train.max_steps=100000"]
    assert main([*argv, "--trials", "2"]) == 0
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    study = optuna.load_study(study_name="budget", storage=url)
    assert len(finished(study)) == 2
    for trial in finished(study):
        seconds = trial.user_attrs["train_seconds"]
        if trial.state == TrialState.COMPLETE:  # the budget, not the 100000 steps, ended it
            assert 0.5 <= seconds < 5.0 and trial.user_attrs["steps"] < 100000
            assert trial.value == pytest.approx(trial.user_attrs["psnr"] / seconds)
        else:  # pruned at an earlier rung
            assert seconds < 0.5
    assert main([*argv, "--trials", "3"]) == 0  # resume: one more trial, not three
    assert len(finished(optuna.load_study(study_name="budget", storage=url))) == 3
    assert "| 2 |" in capsys.readouterr().out
