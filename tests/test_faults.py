"""Crash safety of the real ``atlas run`` process: SIGKILL then --resume, and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from atlas_core.engine.checkpoints import checkpoint_paths, load_checkpoint

pytestmark = pytest.mark.slow

ATLAS = Path(sys.executable).with_name("atlas")
QUICK = [
    "--set", "train.batch_rays=128",
    "--set", "sampler.samples=8",
    "--set", "field.width=16",
    "--set", "eval.video_frames=0",
    "--eval-views", "1",
    "--save-every", "5",
]  # fmt: skip
HINT = re.compile(
    r"atlas: interrupted at step (\d+) \(checkpoint saved\); resume with: (atlas run .*)"
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 scene with 6 training views."""
    from atlas_core.data.synth import write_scene

    out = tmp_path_factory.mktemp("faults") / "scene"
    return write_scene(out, size=16, views={"train": 6, "val": 1, "test": 2})


def default_sigint() -> None:
    """Let the child handle SIGINT even where pytest runs as a background job (which
    ignores it, and ``atlas run`` then keeps ignoring it, as a background job should)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def atlas(*args: str | Path) -> subprocess.Popen:
    """Start the ``atlas`` console script."""
    return subprocess.Popen(
        [str(ATLAS), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"},  # no oversubscription
        preexec_fn=default_sigint,
    )


def wait_until(proc: subprocess.Popen, ready: Callable[[], object], timeout: float = 120) -> None:
    """Poll until ``ready()`` while the process is still running."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"atlas exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for atlas")
        time.sleep(0.01)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL a process that must still be running."""
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen) -> str:
    """Wait for a successful exit; return stderr."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return err


def test_sigkill_at_any_point_then_resume_finishes(scene: Path, tmp_path: Path) -> None:
    out, steps = tmp_path / "run", 200
    folder = out / "checkpoints"
    # killed as soon as the run folder is written: most likely before any checkpoint
    proc = atlas("run", "--data", scene, "--out", out, "--max-steps", steps, *QUICK)
    wait_until(proc, (out / "config.toml").is_file)
    kill(proc)
    # resumed (from a checkpoint or from scratch), then killed again mid-training
    before = {p.name for p in checkpoint_paths(folder)}
    proc = atlas("run", "--resume", "--out", out)
    wait_until(proc, lambda: {p.name for p in checkpoint_paths(folder)} - before)
    kill(proc)
    assert (out / "config.toml").is_file() and not (out / "metrics.json").exists()
    newest = load_checkpoint(checkpoint_paths(folder)[-1])["step"]
    assert 5 <= newest < steps
    # a writer killed inside a save leaves its temporary file behind
    stale = folder / ".step-0000035.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    finish(atlas("run", "--resume", "--out", out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == steps and metrics["skipped_steps"] == 0
    assert not stale.exists()
    assert checkpoint_paths(folder)[-1].name == f"step-{steps:07d}.pt"


def test_ctrl_c_saves_and_exits_130_with_resume_hint(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = atlas("run", "--data", scene, "--out", out, "--max-steps", 1000, *QUICK)
    wait_until(proc, lambda: bool(checkpoint_paths(out / "checkpoints")))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    match = HINT.fullmatch(last)
    assert match, last
    step = int(match.group(1))
    assert 5 <= step < 1000
    newest = checkpoint_paths(out / "checkpoints")[-1]
    assert newest.name == f"step-{step:07d}.pt" and load_checkpoint(newest)["step"] == step
    # the printed command resumes the run (here only a few more steps)
    command = shlex.split(match.group(2))
    assert command == ["atlas", "run", "--resume", "--out", str(out)]
    finish(atlas(*command[1:], "--max-steps", step + 3))
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 3
