"""Optuna storage from a URL: SQLite, a journal file, or PostgreSQL; and the study itself.

RDB storages (SQLite, PostgreSQL) get a heartbeat: a trial whose worker stopped beating
for ``GRACE`` seconds is marked failed and retried once by ``RetryFailedTrialCallback``.
The journal file storage has no heartbeat in Optuna, so there a killed worker's trial
stays RUNNING (see the README).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from atlas_core.errors import AtlasError
from atlas_core.sweep.options import PRUNERS

__all__ = [
    "GRACE",
    "HEARTBEAT",
    "RETRIES",
    "USAGE",
    "create_study",
    "default_url",
    "load_study",
    "make_pruner",
    "open_storage",
]

HEARTBEAT = 10  # seconds between a running trial's heartbeats
GRACE = 60  # seconds without one before the trial counts as dead
RETRIES = 1  # a dead trial is rerun this many times
USAGE = "use sqlite:///FILE, journal:FILE or postgresql://USER@HOST:PORT/DB"


def default_url(sweep_dir: Path) -> str:
    """A SQLite file in the sweep folder."""
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def _postgres(url: str) -> str:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise AtlasError(
            "--storage postgresql://: needs psycopg (pip install 'nerf-atlas[postgres]')"
        ) from exc
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme == "postgresql" else url


def _retry_callback() -> object:
    """Rerun a trial whose worker died (Optuna >= 4.9 renamed the callback)."""
    storages = optuna.storages
    retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
    retry = retry or storages.RetryFailedTrialCallback
    return retry(max_retry=RETRIES)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage a ``--storage`` URL names; an unknown or unusable one is an AtlasError."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.name:
            raise AtlasError(f"--storage {url}: journal storage needs a file, {USAGE}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}  # several workers share one file
    elif url.startswith(("postgresql://", "postgresql+psycopg://")):
        url, kwargs = _postgres(url), {"pool_pre_ping": True}
    else:
        raise AtlasError(f"--storage {url}: unknown storage; {USAGE}")
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=HEARTBEAT,
                grace_period=GRACE,
                heartbeat_stale_trial_callback=_retry_callback(),
            )
    except Exception as exc:  # noqa: BLE001 - connection and URL errors, named by URL
        raise AtlasError(f"--storage {url}: cannot open: {str(exc).splitlines()[0]}") from exc


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Median (Optuna's default rule) or successive halving (Jamieson & Talwalkar 2016)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise AtlasError(f"--pruner {name}: choose one of {', '.join(PRUNERS)}")


def create_study(url: str, name: str, pruner: str) -> optuna.Study:
    """Create (or load) the study once, before workers start: they only load it."""
    storage = open_storage(url)
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        pruner=make_pruner(pruner),
        load_if_exists=True,
    )


def load_study(url: str, name: str, pruner: str) -> optuna.Study:
    """A worker's handle on the study the parent created."""
    return optuna.load_study(study_name=name, storage=open_storage(url), pruner=make_pruner(pruner))
