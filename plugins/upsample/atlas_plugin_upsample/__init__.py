"""Neural rendering for NeRF Atlas: render features at low resolution, upsample with a CNN.

Niemeyer and Geiger 2021, "GIRAFFE: Representing Scenes as Compositional Generative
Neural Feature Fields" (sec. 3.3-3.4). Enabling the plugin wraps the run's field so it
also gives a feature vector per sample, chooses the ``upsample`` renderer (rgb and
features composited at one ray per ``scale`` x ``scale`` block, then a small CNN),
trains on crop batches (``train.batch=crops`` unless set) with the ``upsample_rgb``
loss, and evaluates whole views through the CNN.
"""

from __future__ import annotations

from torch import nn

from atlas_core.api import Register, RunConfig, hookimpl
from atlas_plugin_upsample.cnn import UpsampleCNN
from atlas_plugin_upsample.field import FeatureField, feature_field
from atlas_plugin_upsample.loss import UpsampleLoss
from atlas_plugin_upsample.options import UpsampleOptions
from atlas_plugin_upsample.renderer import UpsampleRenderer, ViewUpsampler

__all__ = [
    "FeatureField",
    "UpsampleCNN",
    "UpsampleLoss",
    "UpsampleOptions",
    "UpsampleRenderer",
    "ViewUpsampler",
]


@hookimpl
def atlas_register_renderers(register: Register) -> None:
    """The low-resolution feature renderer with its upsampling CNN."""
    register("upsample", UpsampleRenderer, description="features at 1/scale, CNN upsampling")


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """The loss on upsampled crops."""
    register("upsample_rgb", UpsampleLoss, description="squared error of upsampled crops")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check ``upsample.*``; choose the renderer, crop batches and the upsample loss."""
    from atlas_core.api import plugin_options

    plugin_options(config, "upsample", UpsampleOptions)
    config.renderer.name = "upsample"
    if "train.batch" not in config.explicit:
        config.train.batch = "crops"
    config.losses.setdefault("upsample_rgb", 1.0)


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> nn.Module:
    """Add a feature head to the run's field."""
    from atlas_core.api import plugin_options

    options = plugin_options(config, "upsample", UpsampleOptions)
    return feature_field(field, options.features)
