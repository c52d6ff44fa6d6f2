"""Hosts for cluster tests on one machine: network namespaces joined by a bridge.

Each host is a network namespace with one interface, ``atlas0``, the end of a veth pair
whose other end sits on a bridge in a hub namespace, as if each host had a network card
plugged into one switch: traffic between hosts crosses real interfaces, not loopback.
Making namespaces needs root (CAP_SYS_ADMIN) and ``ip``; ``Hosts.skip_reason`` says why a
machine cannot. Everything is torn down on exit, processes started in a host included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

PREFIX = "atlas-test-"  # namespace names: PREFIX + pid + "-" + host
INTERFACE = "atlas0"  # the interface inside every host


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _namespaces() -> list[str]:
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.strip()]


def _delete(namespace: str) -> None:
    """Kill what runs in the namespace, then delete it (its interfaces go with it)."""
    _kill_all(namespace)
    _ip("netns", "del", namespace, check=False)


def _kill_all(namespace: str) -> None:
    """SIGKILL every process in the namespace."""
    for pid in _ip("netns", "pids", namespace, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def sweep_leftovers() -> None:
    """Delete namespaces of earlier test processes that died before cleaning up."""
    for name in _namespaces():
        if not name.startswith(PREFIX):
            continue
        pid = name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _delete(name)


class Hosts:
    """``count`` hosts at 10.231.N.1, .2, ... on one bridge (a context manager)."""

    def __init__(self, count: int):
        self.count = count
        tag = f"{PREFIX}{os.getpid()}"
        self.hub = f"{tag}-hub"
        self.names = [f"{tag}-{k}" for k in range(count)]
        self.subnet = f"10.231.{os.getpid() % 250}"

    @staticmethod
    def skip_reason() -> str | None:
        """Why namespaces cannot be made here, or None when they can."""
        if shutil.which("ip") is None:
            return "needs the ip command (iproute2)"
        if os.geteuid() != 0:
            return "needs root to create network namespaces"
        probe = f"{PREFIX}{os.getpid()}-probe"
        made = _ip("netns", "add", probe, check=False)
        if made.returncode:
            return f"ip netns add failed: {made.stderr.strip()}"
        _ip("netns", "del", probe, check=False)
        return None

    def address(self, host: int) -> str:
        """The IPv4 address of ``host``."""
        return f"{self.subnet}.{host + 1}"

    def command(self, host: int, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``."""
        return ["ip", "netns", "exec", self.names[host], *argv]

    def kill(self, host: int) -> None:
        """SIGKILL every process on ``host``, as if the machine went down."""
        _kill_all(self.names[host])

    def __enter__(self) -> Hosts:
        sweep_leftovers()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        _ip("netns", "add", self.hub)
        hub = ["-n", self.hub]
        _ip(*hub, "link", "add", "br0", "type", "bridge")
        _ip(*hub, "link", "set", "br0", "up")
        for k, name in enumerate(self.names):
            _ip("netns", "add", name)
            inside, outside = f"at{os.getpid()}h{k}", f"at{os.getpid()}b{k}"
            _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            _ip("link", "set", outside, "netns", self.hub)
            _ip("link", "set", inside, "netns", name)
            _ip(*hub, "link", "set", outside, "master", "br0")
            _ip(*hub, "link", "set", outside, "up")
            host = ["-n", name]
            _ip(*host, "link", "set", inside, "name", INTERFACE)
            _ip(*host, "addr", "add", f"{self.address(k)}/24", "dev", INTERFACE)
            _ip(*host, "link", "set", INTERFACE, "up")
            _ip(*host, "link", "set", "lo", "up")

    def close(self) -> None:
        """Kill every process in the hosts and delete all namespaces."""
        for name in [*self.names, self.hub]:
            if name in _namespaces():
                _delete(name)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
