"""SIREN for NeRF Atlas: the ``siren`` encoding and the ``siren`` field.

Sitzmann et al. 2020, "Implicit Neural Representations with Periodic Activation
Functions". Enabling the plugin (``--plugins siren``) makes ``siren`` (learned sine
features) the run's position encoding unless the user chose one; ``--set field=siren``
also swaps the field's ReLU MLP for sine layers.
"""

from __future__ import annotations

from torch import nn

from atlas_core.api import Register, RunConfig, hookimpl, require_encoding
from atlas_plugin_siren.encoding import SirenEncoding
from atlas_plugin_siren.field import SirenField
from atlas_plugin_siren.layers import SineLayer

__all__ = ["SineLayer", "SirenEncoding", "SirenField"]


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """Learned sine features."""
    register("siren", SirenEncoding, description="SIREN first layer: sin(w0 (Wx + b))")


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The sine-activated field."""
    register("siren", SirenField, description="sine-activated MLP (SIREN init), density + rgb")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Choose the ``siren`` encoding unless the user chose an encoding."""
    if "encoding" not in config.explicit:
        config.encoding.name = "siren"  # claimed even if filled: the core reports two claims


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> None:
    """Stop at start-up when the field ignores the ``siren`` encoding (e.g. a hash grid)."""
    require_encoding(field, config, "siren", "siren", SirenEncoding)
