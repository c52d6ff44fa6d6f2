"""Sweep throughput: finished trials per hour with 1 and with 2 workers on one study.

Not part of ``make test``; run it with the machine to yourself. Every worker gets one
torch thread (``OMP_NUM_THREADS=1``), so on 2 cores 2 workers can at best double the
rate. Trials do a fixed amount of work (``--steps`` steps of the voxel field, evaluated
on ``--views`` test views), so the ratio shows what running them side by side costs.
Both sweeps use the same storage kind (default: a new SQLite file each).

    python benchmarks/sweeps.py --trials 4 --steps 100
    python benchmarks/sweeps.py --storage postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
STUDY = '''"""Benchmark study: the voxel field's learning rate."""

from atlas_core.sweep import set_param

BASE = {"plugins": ["voxel"]}


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 0.03, 0.3, log=True))
'''


def sweep(args: argparse.Namespace, workers: int, folder: Path) -> dict:
    """Run one sweep with ``workers`` workers; its wall time and trials per hour."""
    study = folder / "throughput.py"
    study.parent.mkdir(parents=True, exist_ok=True)
    study.write_text(STUDY)
    storage = args.storage or f"sqlite:///{folder / 'study.db'}"
    name = f"throughput-{workers}w-{int(time.time())}"
    command = [
        sys.executable, "-m", "atlas_core", "sweep", str(study), "--data", str(args.data),
        "--trials", str(args.trials), "--workers", str(workers), "--storage", storage,
        "--study-name", name, "--out", str(folder / "sweep"), "--logger", "none",
        "--pruner", "none", "--set", f"train.max_steps={args.steps}",
        "--set", f"eval.views={args.views}", "--set", "eval.video_frames=0",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return {
        "workers": workers,
        "trials": args.trials,
        "seconds": round(seconds, 1),
        "trials_per_hour": round(args.trials * 3600 / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure 1 then 2 workers; write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=LEGO)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100, help="training steps per trial")
    parser.add_argument("--views", type=int, default=2, help="test views per trial")
    parser.add_argument("--storage", help="one URL for both sweeps (default: new SQLite files)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-sweeps")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such scene folder")
    rows = [sweep(args, workers, args.out / f"{workers}-workers") for workers in (1, 2)]
    ratio = rows[1]["trials_per_hour"] / rows[0]["trials_per_hour"]
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "ratio": ratio}, indent=2))
    lines = [
        f"Scene {args.data}, {args.trials} trials of {args.steps} steps (voxel), "
        f"{args.views} test views each, one thread per worker, storage "
        f"{args.storage or 'SQLite'}.",
        "",
        "| workers | wall time (s) | trials per hour |",
        "|---|---|---|",
        *[f"| {r['workers']} | {r['seconds']} | {r['trials_per_hour']} |" for r in rows],
        "",
        f"2 workers / 1 worker: {ratio:.2f}x",
    ]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
