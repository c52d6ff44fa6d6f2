"""Throwaway PostgreSQL servers for tests: trust auth, a temp folder, stopped when done.

The server comes from Debian's packages (installed with apt-get when missing and we are
root); it runs as the ``postgres`` user, since it refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


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


@contextmanager
def postgres(
    listen: str = "127.0.0.1", port: int = 0, inside: list[str] | None = None
) -> Iterator[tuple[int, Path]]:
    """Run a server on ``listen``:``port`` (a free one if 0); yields the port and socket folder.

    ``inside`` prefixes the server's commands (``ip netns exec HOST``); clients of any
    address may connect (trust), and local ones through the socket folder.
    """
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'nerf-atlas[postgres]'")
    folder = server_bin() or install_server()
    if folder is None:
        pytest.skip("PostgreSQL is not installed and apt-get install postgresql is impossible")
    root = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
    as_user = list(inside or [])
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user += ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", port or free_port()
    init = [*as_user, str(folder / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run([*init, "--no-sync"], check=True, capture_output=True, timeout=120)
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write("host all all 0.0.0.0/0 trust\n")  # the test's hosts, on their own network
    options = f"-p {port} -k {root} -c listen_addresses={listen}"
    ctl = [*as_user, str(folder / "pg_ctl"), "-D", str(data)]
    start = [*ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield port, root
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
