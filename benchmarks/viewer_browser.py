"""Training with a browser watching the live viewer, against training with no viewer.

Not part of ``make test``. Runs ``atlas run DATA --time-budget S`` twice, the same way,
first without ``--viewer`` and then with it and headless Chromium connected to the page
(its software WebGL included, as on a laptop without a GPU), screenshots every
``--every`` seconds; prints a Markdown table of steps, steps/s and PSNR, and the slowdown.

    python benchmarks/viewer_browser.py DATA [--plugins voxel] [--time-budget 120]
        [--every 30] [--shots DIR] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import Browser  # noqa: E402 - the tests' DevTools driver


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(port: int) -> bool:
    """Whether something accepts connections on the port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def train(argv: list[str], out: Path) -> dict:
    """Run ``atlas run`` to the end; its metrics.json."""
    subprocess.run([*argv, "--out", str(out)], check=True, stderr=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def train_watched(argv: list[str], out: Path, every: float, shots: Path, work: Path) -> dict:
    """Run ``atlas run --viewer`` with Chromium on the page, screenshots every ``every`` s."""
    port = free_port()
    command = [*argv, "--out", str(out), "--viewer", "--viewer-port", str(port)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with Browser(work / "profile") as browser:
        while not serving(port):
            if process.poll() is not None:
                raise SystemExit("the run ended before its viewer served")
            time.sleep(0.2)
        start = time.monotonic()
        browser.open(f"http://127.0.0.1:{port}/")
        shot = 1
        while process.poll() is None:
            if time.monotonic() - start >= shot * every:
                try:
                    browser.screenshot(shots / f"viewer-{int(shot * every):04d}s.png")
                except Exception as exc:  # noqa: BLE001 - the run may close the page
                    print(f"screenshot at {shot * every:.0f} s failed: {exc}", file=sys.stderr)
                shot += 1
            time.sleep(0.5)
    if process.returncode != 0:
        raise SystemExit(f"the watched run failed with exit code {process.returncode}")
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    """Train without and with a watched viewer; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--plugins", default="voxel")
    parser.add_argument("--time-budget", type=float, default=120.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--shots", default="benchmarks/results/viewer-browser")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "atlas_core", "run", "--data", args.data]
    argv += ["--plugins", args.plugins, "--time-budget", str(args.time_budget)]
    for item in args.overrides:
        argv += ["--set", item]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = train(argv, work / "plain")
        watched = train_watched(argv, work / "watched", args.every, shots, work)
    rows = [("no viewer", plain), ("viewer + Chromium connected", watched)]
    print(f"| run ({args.plugins}, {args.time_budget:.0f} s) | steps | steps/s | test PSNR (dB) |")
    print("| --- | ---: | ---: | ---: |")
    for name, metrics in rows:
        steps, seconds = metrics["steps"], metrics["train_seconds"]
        psnr = metrics["test"]["psnr"]
        print(f"| {name} | {steps} | {steps / seconds:.2f} | {psnr:.2f} |")
    slowdown = 1 - watched["steps"] / plain["steps"]
    print(f"\nslowdown with a browser connected: {100 * slowdown:.1f}% fewer steps in the budget")
    print(f"screenshots: {shots}")


if __name__ == "__main__":
    main()
