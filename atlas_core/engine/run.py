"""``Run``: what lifecycle hooks see of a training run, and the few verbs they may use."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.errors import PluginError

if TYPE_CHECKING:
    from atlas_core.engine.trainer import Trainer
    from atlas_core.nerf.pipeline import Pipeline

__all__ = ["Run"]


class Run:
    """A training run as lifecycle hooks see it: its state, read-only, and three verbs.

    Hooks get the same handle for the whole run; ``store`` keeps a plugin's own per-run
    objects (keyed by the plugin's name), so no plugin needs global state.
    """

    def __init__(self, trainer: Trainer):
        self._trainer = trainer
        self._metrics: dict[str, Any] | None = None
        self.store: dict[str, Any] = {}
        """Per-run objects of plugins, keyed by plugin name (``run.store["mine"] = ...``)."""

    @property
    def step(self) -> int:
        """Optimiser steps taken so far."""
        return self._trainer.step

    @property
    def config(self) -> RunConfig:
        """The run's config (read it; plugins change it only in ``atlas_configure``)."""
        return self._trainer.config

    @property
    def scene(self) -> SceneData:
        """The scene being trained on."""
        return self._trainer.scene

    @property
    def pipeline(self) -> Pipeline:
        """The model: ``pipeline.field``, ``.sampler``, ``.renderer``, ``.losses``."""
        return self._trainer.pipeline

    @property
    def device(self) -> torch.device:
        """Where the model lives."""
        return self._trainer.device

    @property
    def out(self) -> Path:
        """The run folder (``test/``, ``checkpoints/``, ``metrics.json``)."""
        return self._trainer.out

    @property
    def main(self) -> bool:
        """True in a single process and on rank 0 of a data-parallel run (it writes)."""
        return self._trainer.main

    @property
    def train_seconds(self) -> float:
        """Seconds spent training so far (evaluation excluded)."""
        return self._trainer.train_seconds

    @property
    def finished(self) -> bool:
        """True once the step count or the time budget is reached."""
        return self._trainer.done()

    @property
    def versions(self) -> dict[str, str]:
        """Enabled plugins and their versions, in load order."""
        return self._trainer.plugins.versions

    def rebuild_optimizer(self) -> None:
        """Start a fresh optimiser after parameters were replaced outside ``Grows.grow``."""
        self._trainer.rebuild_optimizer()

    def add_metric(self, name: str, value: float) -> None:
        """Report ``value`` with this step's metrics (call it in ``atlas_train_step_end``).

        Loggers that mark their hook ``trylast=True`` see it in the same step; it also
        lands in the run's history. A name already reported this step is an error.
        """
        if self._metrics is None:
            raise PluginError(f"add_metric('{name}') outside atlas_train_step_end")
        if name in self._metrics:
            raise PluginError(f"metric '{name}' is already reported at step {self.step}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PluginError(f"metric '{name}' must be a number, got {value!r}")
        self._metrics[name] = float(value) if math.isfinite(value) else value

    def _collect(self, metrics: dict[str, Any] | None) -> None:
        """Let ``add_metric`` write into ``metrics`` (the trainer's, during step-end hooks)."""
        self._metrics = metrics
