"""Data-parallel training: two gloo ranks match one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from ddp_train import same_curves, train


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ranks_said(result: subprocess.CompletedProcess) -> str:
    """The ranks' stderr without progress bars, so a rank's own last words (a rare abort at
    exit: "terminate called without an active exception") show in a failure message."""
    said = [line for line in result.stderr.splitlines() if not line.startswith(("train", "eval"))]
    return "\n".join(said)[-6000:]


def test_two_ranks_match_one_process(atlas_scene: Path, tmp_path: Path) -> None:
    """Loss and gradient norm per step of a 2-rank run match one process within TOLERANCE."""
    single, double = tmp_path / "single", tmp_path / "double"
    train(0, 1, 0, str(atlas_scene), str(single))
    mp.spawn(train, args=(2, free_port(), str(atlas_scene), str(double)), nprocs=2)
    same_curves(single, double)
    assert (double / "metrics.json").is_file()
    assert len(list((double / "checkpoints").glob("*.pt"))) == 1  # rank 0 alone writes


@pytest.mark.slow
def test_torchrun_cli(atlas_scene: Path, tmp_path: Path, quick_args: list[str]) -> None:
    """``torchrun -m atlas_core run`` trains on 2 ranks and rank 0 writes the run folder."""
    out = tmp_path / "run"
    command = [
        # --standalone: torchrun binds a free port itself (a port picked here could be taken
        # by another process before the ranks bind it)
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "atlas_core", "run",
        "--data", str(atlas_scene), "--out", str(out), "--device", "cpu", *quick_args,
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, ranks_said(result)
    assert result.stdout.count("test PSNR") == 1  # rank 1 keeps quiet
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 30


THREADS_AROUND_A_RUN = """
import os, sys, torch
from atlas_core.engine import distributed
before = len(os.listdir("/proc/self/task"))
world = distributed.init(torch.device("cpu"))
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # imports dynamo, as every run does
distributed.finish(world)
after = len(os.listdir("/proc/self/task"))
with open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.txt"), "w") as out:
    out.write(f"{before} {after}")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_finish_stops_the_group_threads(tmp_path: Path) -> None:
    """After ``finish`` no gloo thread is left to free a tensor during interpreter exit (it
    aborted a rank about once in four runs under load: "terminate called without an active
    exception")."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_AROUND_A_RUN)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(script), str(tmp_path),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, ranks_said(result)
    counts = [(tmp_path / f"rank{rank}.txt").read_text().split() for rank in (0, 1)]
    assert all(before == after for before, after in counts), counts  # [before, after] per rank


def test_lost_rank_saves_and_says_how_to_resume(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed collective becomes RankLost; fit saves the last step and names --resume."""
    from atlas_core.config import RunConfig
    from atlas_core.engine import distributed
    from atlas_core.engine.checkpoints import checkpoint_paths
    from atlas_core.engine.trainer import Trainer
    from atlas_core.errors import AtlasError
    from atlas_core.plugins import load

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[pair.cc:537] Read error [10.0.0.2]:1: Connection reset by peer")

    with pytest.raises(
        distributed.RankLost, match=r"^RuntimeError: Read error \[10.0.0.2\]:1: Connection"
    ):
        distributed._collective(broken)  # noqa: SLF001
    config = RunConfig()
    config.data.path = str(atlas_scene)
    for key, value in {"train.max_steps": 10, "field.width": 8, "sampler.samples": 8}.items():
        config.set(key, value)
    trainer = Trainer(config, load(), tmp_path / "run")
    step = trainer.train_step

    def dies_at_four() -> dict:
        if trainer.step == 4:
            distributed._collective(broken)  # noqa: SLF001
        return step()

    monkeypatch.setattr(trainer, "train_step", dies_at_four)
    with pytest.raises(AtlasError, match="step 4: lost contact with another rank") as caught:
        trainer.fit()
    assert "resume with: atlas run --resume --out" in str(caught.value)
    assert [p.name for p in checkpoint_paths(tmp_path / "run" / "checkpoints")][-1].endswith(
        "0000004.pt"
    )


@pytest.mark.slow
def test_torchrun_time_budget_ends_every_rank(
    atlas_scene: Path, tmp_path: Path, quick_args: list[str]
) -> None:
    """Under --time-budget the ranks' clocks differ, yet they stop at the same step."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "atlas_core", "run", "--data", str(atlas_scene), "--out", str(out),
        "--device", "cpu", *quick_args, "--max-steps", "1000000", "--time-budget", "3",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, ranks_said(result)
    metrics = json.loads((out / "metrics.json").read_text())
    # rank 0 stops when any rank reaches the budget: its own clock may be a step short
    assert 2.5 <= metrics["train_seconds"] < 10 and metrics["steps"] < 1000000
