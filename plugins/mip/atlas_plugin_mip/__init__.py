"""Mip-NeRF for NeRF Atlas: the ``ipe`` encoding and the ``mip`` sampler.

Barron et al. 2021, "Mip-NeRF: A Multiscale Representation for Anti-Aliasing Neural
Radiance Fields". Enabling the plugin (``--plugins mip``) chooses the integrated
positional encoding and the frustum sampler, so any field that takes its position
features from the run's encoding integrates them over conical frustums
(``--set mip.shape=cylinder`` for cylinders). A grid field that can integrate its own
features over frustums (``Antialiases``, e.g. ngp's hash grid) keeps its encoding and
sampler and does so instead, Zip-NeRF style (Barron et al. 2023), with
``mip.multisamples`` points per frustum. Another field with its own encoding (e.g. the
voxel grid) cannot use either: the run stops at start-up and says so.
"""

from __future__ import annotations

from torch import nn

from atlas_core.api import (
    Antialiases,
    ConfigError,
    PluginError,
    Register,
    Run,
    RunConfig,
    first_with,
    hookimpl,
    prefer,
    require_encoding,
)
from atlas_plugin_mip.encoding import IntegratedPositionalEncoding, ipe_encoding
from atlas_plugin_mip.options import MipOptions
from atlas_plugin_mip.sampler import MipSampler

__all__ = ["IntegratedPositionalEncoding", "MipOptions", "MipSampler"]


WORLD_RAYS = ("data.ndc", "data.contract")


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """The integrated positional encoding."""
    register("ipe", ipe_encoding, description="integrated positional encoding of frustums")


@hookimpl
def atlas_register_samplers(register: Register) -> None:
    """Coarse-to-fine frustum sampling with one field."""
    register("mip", MipSampler, description="coarse then resampled frustums, one shared field")


COARSE_WEIGHT = 0.1  # Mip-NeRF sec. 3.2: lambda = 0.1 on the coarse loss


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check ``mip.*`` options, choose the ``ipe`` encoding, prefer the ``mip`` sampler (a
    grid field's plugin replaces it with its own), and weight the coarse image's loss 0.1
    (unless ``train.coarse_weight`` is set).

    The core keeps a slot the user chose and reports another plugin choosing the same.
    """
    from atlas_core.api import plugin_options

    plugin_options(config, "mip", MipOptions)
    config.encoding.name = "ipe"
    prefer(config, "sampler", "mip")
    if "train.coarse_weight" not in config.explicit:
        config.train.coarse_weight = COARSE_WEIGHT
    for key in WORLD_RAYS:  # frustums are integrated along world rays
        if key not in config.explicit:
            setattr(config.data, key.split(".")[1], False)


@hookimpl
def atlas_train_start(run: Run) -> None:
    """Refuse NDC or contracted rays, where the frustums' Gaussians would be wrong."""
    space = getattr(run.scene, "space", "box")
    if space != "box":
        raise ConfigError(
            f"plugin 'mip': the rays are in {space} space (data.ndc / data.contract), where "
            "world frustums do not apply (Mip-NeRF's NDC radii and Mip-NeRF 360's "
            "contracted Gaussians are not implemented); set data.ndc=false and "
            "data.contract=false (the defaults with mip)"
        )


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> None:
    """Turn on a grid field's own anti-aliasing; else stop at start-up when another
    plugin claimed the sampler (relight's surface sampler) or the field ignores the
    ``ipe`` encoding (say, volsdf's SDF grid)."""
    from atlas_core.api import plugin_options

    grid = first_with(field, Antialiases)
    if grid is not None:
        grid.antialias(plugin_options(config, "mip", MipOptions).multisamples)
        return
    owner = config.claimed.get("sampler", "mip")
    if owner != "mip":  # another plugin's sampler would drop the frustums unannounced
        raise PluginError(
            f"plugins 'mip' and '{owner}' both choose the sampler ('mip' vs "
            f"'{config.sampler.name}'): field '{config.field.name}' cannot anti-alias "
            "itself, so mip needs its frustum sampler; pick one with --set sampler=NAME"
        )
    require_encoding(field, config, "mip", "ipe", IntegratedPositionalEncoding)
