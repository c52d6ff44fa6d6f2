"""Hook specifications: every way a plugin can extend NeRF Atlas.

Grouped by phase as in pluggy and pytest. Registration hooks run once, when the plugin
manager is built; ``atlas_configure`` and ``atlas_wrap_field`` run when a run is set
up; the lifecycle hooks run during training and get the run's ``Run`` handle.

Implementations of one hook run in plugin load order (the core first, then the plugins as
``--plugins`` lists them); ``@hookimpl(tryfirst=True)`` moves one to the front and
``trylast=True`` to the back (loggers use it, to see every metric plugins added). An
``AtlasError`` raised in a hook is a user error (one line, exit 2); any other exception is
reported as a bug in the plugin, naming it and the hook (exit 1, traceback with --debug).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from torch import nn

    from atlas_core.config import RunConfig
    from atlas_core.data.scene import Views
    from atlas_core.engine.run import Run
    from atlas_core.viewer.handle import ViewerHandle

__all__ = [
    "Register",
    "atlas_configure",
    "atlas_eval_end",
    "atlas_register_datasets",
    "atlas_register_encodings",
    "atlas_register_fields",
    "atlas_register_losses",
    "atlas_register_renderers",
    "atlas_register_samplers",
    "atlas_train_end",
    "atlas_train_start",
    "atlas_train_step_end",
    "atlas_train_views",
    "atlas_viewer_setup",
    "atlas_wrap_field",
    "hookspec",
]

hookspec = pluggy.HookspecMarker("atlas")
"""Marks a function as a hook specification of the project ``atlas``."""


class Register(Protocol):
    """The callback handed to registration hooks."""

    def __call__(
        self, name: str, factory: Any, description: str = "", synth: Any = None, detect: Any = None
    ) -> None:
        """Register ``factory`` under ``name``; a duplicate name raises an error.

        Data kinds may pass ``synth`` (a generator) and ``detect`` (folder -> reason or None).
        """


# -- registration: called once per enabled plugin when the manager is built --------


@hookspec
def atlas_register_fields(register: Register) -> None:
    """Register field factories (``Field`` modules mapping samples to outputs)."""


@hookspec
def atlas_register_encodings(register: Register) -> None:
    """Register encoding factories (``Encoding`` modules with ``in_dim`` and ``out_dim``)."""


@hookspec
def atlas_register_samplers(register: Register) -> None:
    """Register sampler factories (``Sampler``: a RayBundle to packed RaySamples)."""


@hookspec
def atlas_register_renderers(register: Register) -> None:
    """Register renderer factories (``Renderer``: per-sample outputs to per-ray images)."""


@hookspec
def atlas_register_losses(register: Register) -> None:
    """Register loss factories (``Loss``: named terms weighted in ``config.losses``)."""


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
    """Return a module that wraps ``field`` (or None to leave it), in plugin order.

    The wrapper holds ``field`` as a submodule and keeps its outputs' contract; it
    declares ``density`` (``HasDensity``) only when it can answer for the wrapped field.
    """


# -- lifecycle: called by the training loop with the run's handle ---------------------


@hookspec
def atlas_train_start(run: Run) -> None:
    """Called once before the first training step (also after a resume)."""


@hookspec
def atlas_train_views(run: Run, step: int) -> Views | None:
    """Return the training views to draw step ``step``'s rays from, or None for the scene's.

    Called before every step. At most one plugin may supply them (e.g. pixelNeRF's
    per-step objects); two that do are a clash.
    """


@hookspec
def atlas_train_step_end(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Called after every optimizer step with that step's loss terms and learning rate.

    ``run.add_metric(name, value)`` adds a value that loggers (``trylast=True``) see.
    """


@hookspec
def atlas_eval_end(run: Run, step: int, metrics: dict[str, Any]) -> None:
    """Called after each evaluation with its metrics (psnr, ssim, views, per-view PSNR)."""


@hookspec
def atlas_train_end(run: Run, metrics: dict[str, Any]) -> None:
    """Called once after training and the final evaluation with the run's metrics."""


# -- the live viewer: called when `atlas run --viewer` or `atlas view` starts one ------


@hookspec
def atlas_viewer_setup(viewer: ViewerHandle, run: Run) -> None:
    """Add outputs (``viewer.add_output(name, fn)``) and controls (``viewer.gui``) to the viewer.

    ``fn(rays, outputs)`` returns per-ray values [N, 3] in [0, 1] or [N, 1] for the
    output dropdown; a control's callback calls ``viewer.rerender()``.
    """
