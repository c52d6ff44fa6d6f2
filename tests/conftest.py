"""Shared fixtures: small scenes and quick run configs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

QUICK = [
    "--max-steps", "30",
    "--eval-views", "1",
    "--set", "train.batch_rays=256",
    "--set", "sampler.samples=16",
    "--set", "eval.video_frames=2",
    "--set", "field.width=16",
]  # fmt: skip


@pytest.fixture
def quick_args() -> list[str]:
    """CLI options for a run that takes about a second."""
    return list(QUICK)
