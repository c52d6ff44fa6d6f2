"""Training speed with the live viewer attached and no browser connected, against none.

Not part of ``make test``. One trainer alternates windows of ``--seconds`` without a viewer
and with one (a viser server on 127.0.0.1 and the lock the trainer takes each step), so
load from other processes falls on both alike; prints each window's steps/s and the
medians. The issue's bound: no more than 10% slower with the viewer on and no client.

    python benchmarks/viewer_overhead.py DATA [--plugins voxel] [--set KEY=VALUE ...]
        [--threads 1] [--windows 6] [--seconds 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch

from atlas_core.config import RunConfig, apply_overrides
from atlas_core.engine.trainer import Trainer
from atlas_core.plugins import load
from atlas_core.viewer.server import Viewer


class Quiet:
    """A progress bar that shows nothing."""

    def update(self, *args: object) -> None:
        """Ignore a step."""

    def evaluated(self, *args: object) -> None:
        """Ignore an evaluation."""


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def window(trainer: Trainer, seconds: float) -> tuple[float, float]:
    """Steps per second over one window of training, and CPU milliseconds per step (all of
    this process's threads: the viewer's included; steadier than wall time under load)."""
    start, cpu, steps = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - start < seconds:
        trainer.fit_step(Quiet())
        steps += 1
    rate = steps / (time.perf_counter() - start)
    return rate, 1000 * (time.process_time() - cpu) / steps


def main() -> None:
    """Alternate windows without and with the viewer; print both medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--plugins", default="")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # one thread: no OpenMP spinning under other load
    config = RunConfig()
    config.data.path = args.data
    config.plugins = [p for p in args.plugins.split(",") if p]
    config.set("train.save_every", 10**9)
    apply_overrides(config, args.overrides)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, load(config.plugins), Path(out))
        trainer.pipeline.train()
        window(trainer, args.seconds)  # warm up
        rates: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _ in range(args.windows):
            rates["off"].append(window(trainer, args.seconds))
            viewer = Viewer(trainer, port=free_port(), training=True)
            trainer.viewer_lock = viewer.lock
            try:
                rates["on"].append(window(trainer, args.seconds))
            finally:
                trainer.viewer_lock = None
                viewer.stop()
            (a, a_cpu), (b, b_cpu) = rates["off"][-1], rates["on"][-1]
            print(f"off {a:.2f} steps/s {a_cpu:.1f} ms CPU/step   on {b:.2f} steps/s {b_cpu:.1f}")
    paired = statistics.median(b[0] / a[0] for a, b in zip(rates["off"], rates["on"], strict=True))
    print(f"median of paired windows' speed ratio (on/off): {paired:.3f}")
    for i, what in enumerate(("steps/s", "CPU ms/step")):
        off = statistics.median(r[i] for r in rates["off"])
        on = statistics.median(r[i] for r in rates["on"])
        change = 100 * (1 - on / off) if i == 0 else 100 * (on / off - 1)
        print(
            f"median {what}: without viewer {off:.2f}, with viewer (no client) {on:.2f}; "
            f"cost {change:+.1f}%"
        )


if __name__ == "__main__":
    main()
