"""Per-light outputs in the live viewer: the scene lit by one of the training lights."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.api import RayBundle
from atlas_plugin_relight.lights import POSITIONS, POWER, SCALED

if TYPE_CHECKING:
    from collections.abc import Callable

    from atlas_core.api import Run, Views

    OutputFn = Callable[[RayBundle, dict[str, Tensor]], Tensor]

__all__ = ["MAX_LIGHTS", "light_outputs", "training_lights"]

MAX_LIGHTS = 4  # at most this many "light N" entries in the output dropdown


def training_lights(views: Views, count: int = MAX_LIGHTS) -> list[dict[str, Tensor]]:
    """Up to ``count`` distinct light setups of the training images, evenly over the images.

    Each is one image's ``extras`` (positions [L, 3], power [L, 3], scaled []); empty when
    the images carry no lights (a collocated capture lights the scene from the camera).
    """
    if POSITIONS not in views.extras:
        return []
    positions = views.extras[POSITIONS]
    distinct: list[int] = []
    for index in range(positions.shape[0]):
        if all(not torch.allclose(positions[index], positions[j]) for j in distinct):
            distinct.append(index)
    if len(distinct) > count:
        picks = torch.linspace(0, len(distinct) - 1, count).round().long().tolist()
        distinct = [distinct[i] for i in picks]
    keys = (POSITIONS, POWER, SCALED)
    return [{key: views.extras[key][index] for key in keys} for index in distinct]


def _lit_by(run: Run, light: dict[str, Tensor]) -> OutputFn:
    """An output rendering the rays again under ``light`` (the viewer holds the lock)."""

    def fn(rays: RayBundle, outputs: dict[str, Tensor]) -> Tensor:
        count = len(rays)
        extras = dict(rays.extras)
        for key, value in light.items():
            value = value.to(rays.origins.device)
            extras[key] = value.expand(count, *value.shape)
        lit = dataclasses.replace(rays, extras=extras)
        return run.pipeline.render(lit, run.config.eval.chunk)["rgb"]

    return fn


def light_outputs(run: Run) -> dict[str, OutputFn]:
    """``light 1`` .. ``light K``: the training lights of the run's scene, one per output."""
    lights = training_lights(run.scene.split("train"))
    return {f"light {i + 1}": _lit_by(run, light) for i, light in enumerate(lights)}
