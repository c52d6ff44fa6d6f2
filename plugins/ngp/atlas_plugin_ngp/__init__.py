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

TARGET_SAMPLES = 1 << 14  # samples per step; the ray batch follows (Instant-NGP)
# Instant-NGP steps 2^18 samples on a GPU; on a CPU more, smaller steps win (lego, 120 s,
# 2 cores: 2^16 26.70 dB in 676 steps, 2^15 28.76, 2^14 29.01 and 28.43, 2^13 28.36)
# Instant-NGP's Adam (sec. 4, "Training"): lr 1e-2, beta2 0.99, eps 1e-15; the tiny
# epsilon keeps rarely hit table rows moving (lego, 120 s: 25.45 dB with the core's
# 5e-3, 0.999, 1e-8; 26.70 with these)
TRAIN_DEFAULTS = {"lr": 1e-2, "beta2": 0.99, "eps": 1e-15}


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
    plugin is then a clash); for the ngp field choose occupancy-grid sampling, a steady
    sample budget and Instant-NGP's Adam settings (sec. 4), each unless the user set it.
    When the hash encoding feeds another field (``--set encoding=hash``), choose the
    occupancy grid and the sample budget for it too (not the Adam settings)."""
    if "field" not in config.explicit:
        config.field.name = "ngp"
    if config.field.name != "ngp":
        if config.encoding.name == "hash":
            # nerfae on the hash encoding, lego, 300 s: 21.34 dB stratified, 25.13 with the
            # occupancy grid at 2^16 samples per step, 30.89 at 2^14
            prefer_occupancy(config, TARGET_SAMPLES)
        return
    prefer_occupancy(config, TARGET_SAMPLES)
    for key, value in TRAIN_DEFAULTS.items():
        if f"train.{key}" not in config.explicit:
            setattr(config.train, key, value)
