"""Optuna storage from a URL: SQLite, a journal file, or PostgreSQL; and the study itself.

RDB storages (SQLite, PostgreSQL) get a heartbeat: a trial whose worker stopped beating
for ``GRACE`` seconds is marked failed and retried once by ``RetryFailedTrialCallback``.
The journal file storage has no heartbeat in Optuna, so there a killed worker's trial
stays RUNNING (see the README).

Any number of ``atlas sweep`` processes, on any number of machines, may start at the same
moment on a new database: creating Optuna's schema and the study is serialised by
``creation_lock`` (a PostgreSQL advisory lock, or a file lock beside a SQLite file), so
the first process creates them and the others find them.
"""

from __future__ import annotations

import contextlib
import fcntl
import warnings
import zlib
from collections.abc import Iterator
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
    "LOCK_KEY",
    "USAGE",
    "creation_lock",
    "create_study",
    "default_url",
    "load_study",
    "make_pruner",
    "open_storage",
]

HEARTBEAT = 10  # at most this many seconds between a running trial's heartbeats
GRACE = 60  # default seconds without one before the trial counts as dead (--grace)
RETRIES = 1  # a dead trial is rerun this many times
LOCK_KEY = zlib.crc32(b"atlas-optuna-create")  # the PostgreSQL advisory lock's id
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


def open_storage(url: str, grace: int = GRACE) -> optuna.storages.BaseStorage:
    """The storage a ``--storage`` URL names; an unknown or unusable one is an AtlasError.

    A trial without a heartbeat for ``grace`` seconds counts as dead (RDB storages); it
    beats every third of that, at most every ``HEARTBEAT`` seconds.
    """
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
                heartbeat_interval=max(1, min(HEARTBEAT, grace // 3)),
                grace_period=grace,
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


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Hold a lock, shared by every process using ``url``, while schema and study are made.

    PostgreSQL: a session advisory lock on a connection of its own. It needs no table (it
    works on an empty database), waits instead of failing, and the server releases it
    when the connection closes, also when the process holding it is killed. Retrying on
    unique-violation errors would work too, but guesses how often and how long to retry.
    SQLite: ``flock`` on ``FILE.lock`` beside the database (SQLite files are local).
    Journal storage needs none: Optuna locks the journal file for every write.
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # closing the file releases the lock
        return
    if not url.startswith(("postgresql://", "postgresql+psycopg://")):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(_postgres(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        connection = engine.connect()
    except Exception as exc:  # noqa: BLE001 - connection and URL errors, named by URL
        engine.dispose()
        raise AtlasError(f"--storage {url}: cannot open: {str(exc).splitlines()[0]}") from exc
    lock = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
    unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
    try:
        connection.execute(lock, {"key": LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(unlock, {"key": LOCK_KEY})
    finally:
        connection.close()
        engine.dispose()


def create_study(url: str, name: str, pruner: str, grace: int = GRACE) -> optuna.Study:
    """Create the study, or join it when another process (here or elsewhere) made it."""
    with creation_lock(url):
        return optuna.create_study(
            storage=open_storage(url, grace),
            study_name=name,
            direction="maximize",
            pruner=make_pruner(pruner),
            load_if_exists=True,
        )


def load_study(url: str, name: str, pruner: str, grace: int = GRACE) -> optuna.Study:
    """A worker's handle on the study the parent created."""
    storage = open_storage(url, grace)
    return optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(pruner))
