"""Hook specifications: every way a plugin can extend NeRF Atlas.

Grouped by phase as in pluggy and pytest. Registration hooks run once, when the plugin
manager is built; ``atlas_configure`` and ``atlas_wrap_field`` run when a run is set
up; the lifecycle hooks run during training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from torch import nn

    from atlas_core.config import RunConfig
    from atlas_core.train import Trainer

hookspec = pluggy.HookspecMarker("atlas")


class Register(Protocol):
    """The callback handed to registration hooks."""

    def __call__(self, name: str, factory: Any, description: str = "", synth: Any = None) -> None:
        """Register ``factory`` under ``name``; a duplicate name raises an error."""


# -- registration: called once per enabled plugin when the manager is built --------


@hookspec
def atlas_register_fields(register: Register) -> None:
    """Register field factories (``nn.Module`` classes mapping samples to outputs)."""


@hookspec
def atlas_register_encodings(register: Register) -> None:
    """Register encoding factories (``nn.Module`` classes with an ``out_dim``)."""


@hookspec
def atlas_register_samplers(register: Register) -> None:
    """Register sampler factories (turn a RayBundle into packed RaySamples)."""


@hookspec
def atlas_register_renderers(register: Register) -> None:
    """Register renderer factories (per-sample outputs to per-ray images)."""


@hookspec
def atlas_register_losses(register: Register) -> None:
    """Register loss factories (named terms weighted in ``config.losses``)."""


@hookspec
def atlas_register_datasets(register: Register) -> None:
    """Register data kinds: ``factory(path, **options)`` returns a SceneData.

    ``synth=writer`` (optional) makes ``atlas data synth --kind NAME`` work:
    ``writer(out: Path, size: int, seed: int) -> Path`` writes a small generated scene of
    this kind under ``out`` and returns the path to pass as ``--data``.
    """


# -- set-up: called when a run is built ---------------------------------------------


@hookspec
def atlas_configure(config: RunConfig) -> None:
    """Adjust the run's config in place before components are built.

    Called once per enabled plugin, in plugin order. A plugin may fill a slot
    (field, sampler, renderer, encoding) that is still at its default and add loss
    terms; two plugins filling the same slot is a conflict unless the user chose it.
    """


@hookspec
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> nn.Module | None:
    """Return a module that wraps ``field`` (or None to leave it), in plugin order."""


# -- lifecycle: called by the Trainer -------------------------------------------------


@hookspec
def atlas_train_start(trainer: Trainer) -> None:
    """Called once before the first training step (also after a resume)."""


@hookspec
def atlas_train_step_end(trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
    """Called after every optimizer step with that step's loss terms and learning rate."""


@hookspec
def atlas_eval_end(trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
    """Called after each evaluation with its metrics (psnr, ssim, views, images)."""


@hookspec
def atlas_train_end(trainer: Trainer, metrics: dict[str, Any]) -> None:
    """Called once after training and the final evaluation with the run's metrics."""
