"""A sweep with 2 workers on a PostgreSQL server started for the test (Optuna RDB storage).

The server comes from Debian's packages (installed with apt-get when missing and we are
root); it runs as the ``postgres`` user on 127.0.0.1 and a free port, from a temp
folder, and is stopped when the test ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from atlas_core.cli import main

STUDY = '''"""Tiny study: the core MLP's learning rate."""

from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
'''
TINY = [
    "--set", "train.max_steps=12", "--set", "eval.views=1", "--set", "train.batch_rays=128",
    "--set", "sampler.samples=8", "--set", "eval.video_frames=0", "--set", "field.width=8",
]  # fmt: skip


def server_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, if PostgreSQL is installed."""
    found = shutil.which("initdb") and shutil.which("pg_ctl")
    if found:
        return Path(shutil.which("pg_ctl") or "").resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(folders[-1]) if folders else None


def install_server() -> Path | None:
    """apt-get install postgresql when we are root and apt works; else None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=True)
        except (subprocess.SubprocessError, OSError):
            return None
    return server_bin()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server with trust auth on 127.0.0.1."""
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'nerf-atlas[postgres]'")
    folder = server_bin() or install_server()
    if folder is None:
        pytest.skip("PostgreSQL is not installed and apt-get install postgresql is impossible")
    root = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    run = [*as_user, str(folder / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run([*run, "--no-sync"], check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    ctl = [*as_user, str(folder / "pg_ctl"), "-D", str(data)]
    start = [*ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_postgres(postgres_url: str, atlas_scene: Path, tmp_path: Path) -> None:
    """Study created once, 2 worker processes, exactly 3 finished trials, none repeated."""
    study_file = tmp_path / "pg_study.py"
    study_file.write_text(STUDY)
    argv = ["sweep", str(study_file), "--data", str(atlas_scene), "--trials", "3"]
    argv += ["--workers", "2", "--storage", postgres_url, "--logger", "none"]
    assert main([*argv, "--out", str(tmp_path / "sweep"), *TINY]) == 0
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.load_study(study_name="pg_study", storage=url)
    # a trial two workers create in the same instant past N is failed and tagged "surplus"
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state == TrialState.FAIL for t in surplus)
    real = [t for t in study.trials if not t.user_attrs.get("surplus")]
    states = [t.state for t in real]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert len(real) == 3
    assert len({t.user_attrs["run_dir"] for t in real}) == 3
    assert (tmp_path / "sweep" / "summary.md").is_file()
