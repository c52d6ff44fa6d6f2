"""Sweep building blocks: study files, plugin sets, storages, pruners, results, retries."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from atlas_core import hookimpl
from atlas_core.cli import main
from atlas_core.config import RunConfig, load_toml
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import AtlasError
from atlas_core.plugins import load
from atlas_core.sweep import choose_plugins, space, storage
from atlas_core.sweep.objective import (
    INTERMEDIATE_VIEWS,
    RUNGS,
    PruneTrial,
    Settings,
    TrialReporter,
    objective_value,
    trial_config,
)
from atlas_core.sweep.report import write_sweep_report
from atlas_core.sweep.results import (
    importances,
    markdown_table,
    summarize,
    table_rows,
    write_best,
)
from atlas_core.sweep.space import plugin_set_name, read_study_file
from atlas_core.sweep.worker import MAX_FAILURES, needed, work, worker_threads

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
TINY_STUDY = """from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
"""


def test_choose_plugins_keeps_installed_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The categorical offers only sets whose plugins are all installed."""
    monkeypatch.setattr(space, "installed_plugins", lambda: {"ngp", "mip"})
    trial = optuna.create_study().ask()
    config = RunConfig()
    chosen = choose_plugins(trial, config, [(), ("ngp",), ("volsdf", "mip"), ("mip",)])
    assert trial.distributions["plugins"].choices == ("none", "ngp", "mip")
    assert config.plugins == list(chosen)
    with pytest.raises(AtlasError, match="missing: \\['volsdf'\\]"):
        choose_plugins(optuna.create_study().ask(), RunConfig(), [("volsdf",)])


def test_study_files_load_and_name_missing_plugins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Shipped studies import; one needing a missing plugin names it and the pip line."""
    for name in ("plugin_combos", "ngp_tune", "volsdf_mip"):
        study = read_study_file(SWEEPS / f"{name}.py")
        assert study.name == name and callable(study.space)
    monkeypatch.setattr(space, "installed_plugins", lambda: {"volsdf"})
    with pytest.raises(AtlasError, match="needs plugin\\(s\\) mip.*pip install -e ./plugins/mip"):
        read_study_file(SWEEPS / "volsdf_mip.py").check_plugins()
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(AtlasError, match="defines no space"):
        read_study_file(tmp_path / "empty.py")
    (tmp_path / "broken.py").write_text("import nowhere_to_be_found\n")
    with pytest.raises(AtlasError, match="failed to import: ModuleNotFoundError"):
        read_study_file(tmp_path / "broken.py")
    with pytest.raises(AtlasError, match="study file not found"):
        read_study_file(tmp_path / "missing.py")


def test_plugin_combos_sets_build(atlas_scene: Path, tmp_path: Path) -> None:
    """Every installed plugin set of plugin_combos, with its suggested options, builds."""
    study = read_study_file(SWEEPS / "plugin_combos.py")
    settings = Settings(str(study.path), "t", "", str(tmp_path), str(atlas_scene), trials=1)
    optuna_study = optuna.create_study()
    probe = optuna_study.ask()
    study.space(probe, RunConfig())
    choices = probe.distributions["plugins"].choices
    assert "none" in choices
    for choice in choices:
        optuna_study.enqueue_trial({"plugins": choice})
        trial = optuna_study.ask()
        config = trial_config(trial, study, settings)
        assert plugin_set_name(config.plugins) == choice
        config.set("device", "cpu")
        trainer = Trainer(config, load(config.plugins), tmp_path / choice)
        assert sum(p.numel() for p in trainer.pipeline.parameters()) > 0


def test_storage_urls_and_pruners(tmp_path: Path) -> None:
    """Known URL kinds open; unknown ones fail with the accepted forms; pruners by name."""
    assert isinstance(
        storage.open_storage(f"journal:{tmp_path / 'j.log'}"), optuna.storages.JournalStorage
    )
    assert isinstance(
        storage.open_storage(storage.default_url(tmp_path)), optuna.storages.RDBStorage
    )
    with pytest.raises(AtlasError, match="unknown storage; use sqlite:///FILE, journal:FILE"):
        storage.open_storage("mysql://x")
    assert isinstance(storage.make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(storage.make_pruner("halving"), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(storage.make_pruner("none"), optuna.pruners.NopPruner)


def test_grace_sets_the_heartbeat(tmp_path: Path) -> None:
    """--grace is the storage's grace period; it beats a third as often, at most every 10 s."""
    url = storage.default_url(tmp_path)
    default = storage.open_storage(url)
    assert (default.grace_period, default.heartbeat_interval) == (60, storage.HEARTBEAT)
    short = storage.open_storage(url, grace=6)
    assert (short.grace_period, short.heartbeat_interval) == (6, 2)
    study = storage.create_study(url, "g", "none", grace=9)
    assert study._storage.get_heartbeat_interval() == 3  # noqa: SLF001


def test_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers share the cores, unless OMP_NUM_THREADS says how many threads each gets."""
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [worker_threads(k) for k in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert worker_threads(1) == 1


def test_creation_lock_serialises(tmp_path: Path) -> None:
    """The SQLite creation lock is exclusive: a second holder waits for the first."""
    import threading

    url = storage.default_url(tmp_path)
    order: list[str] = []
    with storage.creation_lock(url):

        def second() -> None:
            with storage.creation_lock(url):
                order.append("second")

        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.3)
        order.append("first")
    other.join(timeout=10)
    assert order == ["first", "second"]


def test_best_config_comes_from_the_study(tmp_path: Path) -> None:
    """best.toml is written from the trial's stored config: its run folder may be elsewhere."""
    config = RunConfig()
    config.set("train.lr", 0.0042)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.set_user_attr("run_dir", str(tmp_path / "on-another-host"))
    trial.set_user_attr("config", config.to_dict())
    study.tell(trial, 1.0)
    path = write_best(study.best_trial, tmp_path / "best.toml")
    assert load_toml(path).train.lr == 0.0042


def test_objective_and_results_helpers() -> None:
    """PSNR per second; table rows; importances explain when there are too few trials."""
    assert objective_value("psnr", 30.0, 10.0) == 30.0
    assert objective_value("psnr_per_second", 30.0, 10.0) == 3.0
    study = optuna.create_study(direction="maximize")
    assert "not enough completed trials (0" in importances(study)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    rows = table_rows(study.trials)
    assert rows[0][:2] == ("0", "COMPLETE") and rows[0][3].startswith("x=")
    assert markdown_table(rows).count("\n") == 2
    assert "needs at least 2" in importances(study)


def test_sweep_cli_rejects_bad_input(atlas_scene: Path, tmp_path: Path, capsys) -> None:
    """Bad sweep options stop with exit code 2 and one line naming the option."""
    study = tmp_path / "s.py"
    study.write_text(TINY_STUDY)
    base = ["sweep", str(study), "--data", str(atlas_scene), "--out", str(tmp_path / "o")]
    cases = {
        "--trials must be >= 1": ["--trials", "0"],
        "--workers must be >= 1": ["--trials", "1", "--workers", "0"],
        "--time-budget must be > 0": ["--trials", "1", "--time-budget", "0"],
        "unknown storage": ["--trials", "1", "--storage", "redis://x"],
        "config key 'train.nope'": ["--trials", "1", "--set", "train.nope=1"],
        "--study-name": ["--trials", "1", "--study-name", "a b"],
        "--grace must be >= 3 seconds": ["--trials", "1", "--grace", "2"],
    }
    for message, extra in cases.items():
        assert main([*base, *extra]) == 2, message
        assert message in capsys.readouterr().err
    assert main(["sweep", str(study), "--data", str(tmp_path / "none"), "--trials", "1"]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # our study.ask()
def test_dead_worker_trial_is_retried(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RUNNING trial whose heartbeat stopped is failed, rerun, and still N finish."""
    monkeypatch.setattr(storage, "HEARTBEAT", 1)
    monkeypatch.setattr(storage, "GRACE", 1)
    monkeypatch.setattr("atlas_core.sweep.worker.POLL", 0.2)
    study_file = tmp_path / "s.py"
    study_file.write_text(TINY_STUDY)
    url = storage.default_url(tmp_path)
    study = storage.create_study(url, "dead", "none")
    dead = study.ask()  # a worker that asked, beat once and died
    study._storage.record_heartbeat(dead._trial_id)  # noqa: SLF001
    time.sleep(1.5)
    settings = Settings(str(study_file), "dead", url, str(tmp_path), str(atlas_scene), trials=2)
    settings.logger = "none"
    settings.overrides = ["train.max_steps=6", "eval.views=1", "eval.video_frames=0"]
    settings.overrides += ["train.batch_rays=64", "sampler.samples=8", "field.width=8"]
    assert work(settings) == 0
    trials = storage.load_study(url, "dead", "none").trials
    states = [t.state for t in trials]
    assert states[0] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) == 2
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE


class EvalSpy:
    """In-process plugin: the views of every evaluation."""

    name = "spy"

    def __init__(self) -> None:
        self.views: list[int] = []

    @hookimpl
    def atlas_eval_end(self, run, step, metrics) -> None:  # noqa: ANN001
        self.views.append(metrics["views"])


def test_reporter_rungs_and_pruning(atlas_scene: Path, tmp_path: Path) -> None:
    """Rungs 1..3 on INTERMEDIATE_VIEWS views, rung 4 the final one; a bad trial is pruned."""
    study = optuna.create_study(direction="maximize", pruner=storage.make_pruner("median"))
    for _ in range(2):  # two finished trials that set a high bar at every rung
        study.add_trial(
            optuna.trial.create_trial(
                value=99.0, intermediate_values={r: 99.0 for r in range(1, RUNGS + 1)}
            )
        )
    config = RunConfig()
    config.data.path = str(atlas_scene)
    options = {"device": "cpu", "field.width": 8, "sampler.samples": 8, "eval.views": 3}
    options.update({"train.batch_rays": 64, "train.max_steps": 8})
    for key, value in options.items():
        config.set(key, value)
    trial, spy = study.ask(), EvalSpy()
    reporter = TrialReporter(trial, "psnr")
    trainer = Trainer(config, load(extra=[("spy", spy), ("sweep", reporter)]), tmp_path / "r")
    reporter.attach(trainer)
    with pytest.raises(PruneTrial, match="rung 1"):
        trainer.fit()
    assert spy.views == [INTERMEDIATE_VIEWS]
    assert config.eval.views == 3  # restored after the intermediate evaluation
    free = optuna.create_study(direction="maximize", pruner=storage.make_pruner("none"))
    trial, spy = free.ask(), EvalSpy()
    reporter = TrialReporter(trial, "psnr")
    trainer = Trainer(config, load(extra=[("spy", spy), ("sweep", reporter)]), tmp_path / "s")
    reporter.attach(trainer)
    trainer.fit()
    trainer.finish(video=False)
    assert spy.views == [INTERMEDIATE_VIEWS] * (RUNGS - 1) + [3]
    assert sorted(free.trials[0].intermediate_values) == list(range(1, RUNGS + 1))


def test_surplus_rule_ignores_failed_trials() -> None:
    """A trial is needed while fewer than N unfailed trials were created before it."""
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(value=2.0))
    trial = study.ask()
    assert not needed(trial, 2)
    assert needed(trial, 3)


def test_summary_leaves_out_a_trial_about_to_be_dropped(tmp_path: Path) -> None:
    """A trial another worker just created past N is in neither summary.md nor report.html."""
    study = optuna.create_study(direction="maximize", study_name="race")
    for value in (1.0, 2.0):
        attrs = {"psnr": value, "config": RunConfig().to_dict()}
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    late = study.ask()  # running, not yet tagged surplus by its worker
    assert "\n| 2 | RUNNING" in summarize(study, tmp_path, "psnr")
    text = summarize(study, tmp_path, "psnr", total=2)
    assert text.count("\n| ") == 1 + 2 and "RUNNING" not in text
    assert "2 finished trials of 2" in write_sweep_report(study, tmp_path, "psnr", 2).read_text()
    study.tell(late, 0.5)
    assert summarize(study, tmp_path, "psnr", total=2).count("\n| ") == 1 + 3  # a finished one


def test_surplus_trial_is_dropped_quietly(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial dropped as surplus leaves no Optuna failure warning or traceback."""
    import logging

    from atlas_core.sweep import worker

    verdicts = iter([False])
    monkeypatch.setattr(worker, "needed", lambda trial, total: next(verdicts, True))
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("optuna.study._optimize").addHandler(handler)
    study_file = tmp_path / "s.py"
    study_file.write_text(TINY_STUDY)
    url = storage.default_url(tmp_path)
    storage.create_study(url, "quiet", "none")
    settings = Settings(str(study_file), "quiet", url, str(tmp_path), str(atlas_scene), trials=1)
    settings.logger = "none"
    settings.overrides = ["train.max_steps=4", "eval.views=1", "eval.video_frames=0"]
    settings.overrides += ["train.batch_rays=64", "sampler.samples=8", "field.width=8"]
    try:
        assert work(settings) == 0
    finally:
        logging.getLogger("optuna.study._optimize").removeHandler(handler)
    trials = storage.load_study(url, "quiet", "none").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs.get("surplus")
    assert not [m for m in seen if "failed" in m], seen


def test_worker_stops_after_failures_in_a_row(
    atlas_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trials that all fail (a bad option in the study) stop the sweep with exit code 2."""
    study_file = tmp_path / "bad.py"
    study_file.write_text(TINY_STUDY + '    set_param(config, "train.no_such_key", 1)\n')
    argv = ["sweep", str(study_file), "--data", str(atlas_scene), "--trials", "5"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--logger", "none"]) == 2
    captured = capsys.readouterr()
    assert f"{MAX_FAILURES} trials failed in a row" in captured.err
    assert "train.no_such_key" in captured.err
    assert "No trial completed" in captured.out
