"""Per-image appearance for NeRF Atlas: real photos differ in exposure and white balance.

``--plugins appearance`` wraps the run's field (any field) so that the colour of every
sample is corrected by a learned per-image code: code -> small MLP -> affine colour
transform (NeRF-W, Martin-Brualla et al. 2021; Urban Radiance Fields, Rematas et al.
2022). Held-out views use the mean of the training codes (``appearance.eval=mean``) or no
correction (``identity``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_core.api import ConfigError, PluginError, Register, hookimpl, plugin_options
from atlas_plugin_appearance.field import (
    AppearanceField,
    find_appearance,
    training_views,
    wrap,
)
from atlas_plugin_appearance.loss import CodeL2Loss
from atlas_plugin_appearance.options import AppearanceOptions

if TYPE_CHECKING:
    from torch import nn

    from atlas_core.api import Run, RunConfig

__all__ = ["AppearanceField", "AppearanceOptions", "find_appearance", "training_views"]
__version__ = "1.0.0"

NAME = "appearance"
PER_STEP_VIEWS = ("pixelnerf",)  # plugins whose atlas_train_views swap the training views
LOSS = "appearance_l2"


def options(config: RunConfig) -> AppearanceOptions:
    """The run's checked ``appearance.*`` options."""
    return plugin_options(config, NAME, AppearanceOptions)


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """The codes' L2 penalty."""
    register(LOSS, CodeL2Loss, description="mean squared norm of the batch's appearance codes")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check the options; ``appearance.l2 > 0`` adds the ``appearance_l2`` loss term."""
    chosen = options(config)
    for other in PER_STEP_VIEWS:
        if other in config.plugins:
            raise PluginError(
                f"plugins '{NAME}' and '{other}' clash: '{other}' (its data kind) draws each "
                "step's views from many scenes, so camera indices name no photo of one scene for "
                "per-image codes; run without one of them"
            )
    if chosen.l2 > 0 and LOSS not in config.losses:
        config.losses[LOSS] = chosen.l2


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> nn.Module:
    """Wrap the field in the per-image colour correction."""
    chosen = options(config)
    return wrap(field, dim=chosen.dim, hidden=chosen.hidden, capacity=chosen.max_images,
                eval_mode=chosen.eval, lr_scale=chosen.lr_scale)  # fmt: skip


@hookimpl
def atlas_train_start(run: Run) -> None:
    """Record the number of training images (the held-out code is their mean)."""
    found = find_appearance(run.pipeline)
    if found is None:
        return
    try:
        found.set_num_images(len(run.scene.split("train")))
    except ValueError as exc:
        raise ConfigError(f"plugin 'appearance': {exc}") from exc
