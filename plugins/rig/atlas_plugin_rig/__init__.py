"""NeRF Atlas plugin ``rig``: a point-based radiance field (Point-NeRF, Xu et al. 2022).

Hooks:
    atlas_register_fields: registers the field ``rig`` (RigField).
    atlas_configure: claims the field slot unless the user chose one, then occupancy sampling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_core.api import Register, hookimpl, prefer_occupancy
from atlas_plugin_rig.field import RigField

if TYPE_CHECKING:
    from atlas_core.api import RunConfig

__all__ = ["NAME", "SAMPLER_OPTIONS", "TARGET_SAMPLES", "RigField", "__version__"]
__version__ = "1.0.0"

NAME = "rig"
TARGET_SAMPLES = 1 << 14  # samples per step; the ray batch follows (Instant-NGP)
SAMPLER_OPTIONS = {"resolution": 64}  # occupancy cells per axis: each refresh queries them all


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The rig field."""
    register(NAME, RigField, description="learned points, features interpolated by distance")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Claim the field, then occupancy sampling and a sample budget, each unless set."""
    if "field" not in config.explicit:
        config.field.name = NAME
    if config.field.name != NAME:
        return
    prefer_occupancy(config, TARGET_SAMPLES)
    if config.sampler.name == "occupancy":
        for key, value in SAMPLER_OPTIONS.items():
            config.sampler.options.setdefault(key, value)
