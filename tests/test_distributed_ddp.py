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

from atlas_core import hookimpl
from atlas_core.config import RunConfig
from atlas_core.engine.trainer import Trainer
from atlas_core.nerf.samplers import StratifiedSampler, samples_from_bins, stratified_edges
from atlas_core.plugins import load

STEPS = 8
# float32 sums over 32 vs 2 x 16 rays differ in order only; Adam amplifies this a little
TOLERANCE = 1e-4


class FixedSampler(StratifiedSampler):
    """Stratified bins without jitter, so both runs see identical samples."""

    def forward(self, rays, field):  # noqa: ANN001, ANN201 - the Sampler signature
        return samples_from_bins(rays, stratified_edges(rays, self.samples, False)), {}


class Recorder:
    """In-process plugin: the fixed sampler and the loss of every step."""

    name = "recorder"

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.grad_norms: list[float] = []  # Adam hides a wrong gradient scale; this does not

    @hookimpl
    def atlas_register_samplers(self, register) -> None:  # noqa: ANN001
        register("fixed", FixedSampler, description="no jitter (tests)")

    @hookimpl
    def atlas_train_step_end(self, run, step, metrics) -> None:  # noqa: ANN001
        self.losses.append(metrics["loss"])
        grads = [p.grad.norm() ** 2 for p in run.pipeline.parameters() if p.grad is not None]
        self.grad_norms.append(float(sum(grads)) ** 0.5)


def train(rank: int, world: int, port: int, scene: str, out: str) -> None:
    """Train STEPS steps as ``rank`` of ``world`` and write the losses (rank 0)."""
    if world > 1:
        os.environ.update(
            RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        )  # fmt: skip
    config = RunConfig()
    config.data.path = scene
    for key, value in {
        "device": "cpu", "sampler": "fixed", "sampler.samples": 8, "field.width": 16,
        "train.batch_rays": 32, "train.max_steps": STEPS, "eval.views": 1,
        "eval.video_frames": 0,
    }.items():  # fmt: skip
        config.set(key, value)
    recorder = Recorder()
    trainer = Trainer(config, load(extra=[("recorder", recorder)]), Path(out))
    trainer.write_config()
    trainer.fit()
    trainer.finish(video=False)
    if trainer.main:
        curves = {"loss": recorder.losses, "grad_norm": recorder.grad_norms}
        (Path(out) / "curves.json").write_text(json.dumps(curves))
    from atlas_core import distributed

    distributed.finish(trainer.world)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_ranks_match_one_process(atlas_scene: Path, tmp_path: Path) -> None:
    """Loss and gradient norm per step of a 2-rank run match one process within TOLERANCE."""
    single, double = tmp_path / "single", tmp_path / "double"
    train(0, 1, 0, str(atlas_scene), str(single))
    mp.spawn(train, args=(2, free_port(), str(atlas_scene), str(double)), nprocs=2)
    one = json.loads((single / "curves.json").read_text())
    two = json.loads((double / "curves.json").read_text())
    for curve in ("loss", "grad_norm"):
        assert len(one[curve]) == len(two[curve]) == STEPS
        for a, b in zip(one[curve], two[curve], strict=True):
            assert abs(a - b) <= TOLERANCE * max(abs(a), 1e-3), (curve, one, two)
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
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("test PSNR") == 1  # rank 1 keeps quiet
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 30
