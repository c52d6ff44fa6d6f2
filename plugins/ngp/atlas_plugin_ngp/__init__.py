"""Instant-NGP for NeRF Atlas: the ``hash`` encoding and the ``ngp`` field.

Mueller et al. 2022, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding". Enabling the plugin (``--plugins ngp``) makes ``ngp`` the run's field unless
the user chose a field; the hash encoding can also feed other fields
(``--set encoding=hash``).
"""

from __future__ import annotations

from atlas_core.api import Register, RunConfig, hookimpl, prefer_occupancy
from atlas_plugin_ngp.field import NGPField
from atlas_plugin_ngp.hash_encoding import HashEncoding

__all__ = ["HashEncoding", "NGPField"]

TARGET_SAMPLES = 1 << 16  # samples per step; the ray batch follows (Instant-NGP)


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """The multiresolution hash encoding."""
    register("hash", HashEncoding, description="multiresolution hash grid (Instant-NGP)")


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The Instant-NGP field."""
    register("ngp", NGPField, description="hash grid, 64-wide density and colour MLPs, SH views")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Claim the field slot for ``ngp`` unless the user chose a field (a second field
    plugin is then a clash); for the ngp field choose occupancy-grid sampling and a steady
    sample budget (Instant-NGP, sec. 4), each unless the user set it."""
    if "field" not in config.explicit:
        config.field.name = "ngp"
    if config.field.name != "ngp":
        return
    prefer_occupancy(config, TARGET_SAMPLES)
