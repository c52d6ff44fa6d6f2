"""Training that records loss and gradient norm per step, for data-parallel tests.

Imported by the tests, and run as a script by ``torchrun`` (on hosts in network
namespaces): ``python ddp_train.py SCENE OUT [KEY=VALUE ...]`` trains as the rank
torchrun says and rank 0 writes ``OUT/curves.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from atlas_core import hookimpl
from atlas_core.config import RunConfig, apply_overrides
from atlas_core.engine import distributed
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


def train(
    rank: int, world: int, port: int, scene: str, out: str, overrides: list[str] | None = None
) -> None:
    """Train STEPS steps as ``rank`` of ``world`` and write the losses (rank 0).

    ``port`` 0: torchrun set the environment; ``overrides`` are ``KEY=VALUE`` settings.
    """
    if world > 1 and port:
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
    apply_overrides(config, overrides or [])
    recorder = Recorder()
    trainer = Trainer(config, load(extra=[("recorder", recorder)]), Path(out))
    trainer.write_config()
    trainer.fit()
    trainer.finish(video=False)
    if trainer.main:
        curves = {"loss": recorder.losses, "grad_norm": recorder.grad_norms}
        (Path(out) / "curves.json").write_text(json.dumps(curves))
    distributed.finish(trainer.world)


def same_curves(one: Path, two: Path) -> None:
    """Assert the loss and gradient norm of every step agree within TOLERANCE."""
    first = json.loads((one / "curves.json").read_text())
    second = json.loads((two / "curves.json").read_text())
    for curve in ("loss", "grad_norm"):
        assert len(first[curve]) == len(second[curve]) == STEPS
        for a, b in zip(first[curve], second[curve], strict=True):
            assert abs(a - b) <= TOLERANCE * max(abs(a), 1e-3), (curve, first, second)


if __name__ == "__main__":
    world = int(os.environ.get("WORLD_SIZE", "1"))
    train(int(os.environ.get("RANK", "0")), world, 0, sys.argv[1], sys.argv[2], sys.argv[3:])
