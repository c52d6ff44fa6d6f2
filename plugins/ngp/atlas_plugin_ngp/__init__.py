"""Instant-NGP for NeRF Atlas: the ``hash`` encoding and the ``ngp`` field.

Mueller et al. 2022, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding". Enabling the plugin (``--plugins ngp``) makes ``ngp`` the run's field unless
the user chose a field; the hash encoding can also feed other fields
(``--set encoding=hash``).
"""

from __future__ import annotations

from torch import nn

from atlas_core.api import HasSDF, Register, RunConfig, first_with, hookimpl, prefer_occupancy
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
# Instant-NGP refreshes its occupancy grid every 16 steps of 2^18 samples; at 2^14 samples a
# step that is every 256 steps for the same samples between refreshes. Lego, 120 s, 2 cores,
# the C++ march, the same cadence in and after the warm-up: every 16 steps 28.83 and 29.44
# dB, 64: 29.40 and 30.17, 128: 29.96 and 29.35, 256: 29.28. The warm-up keeps 16 (the
# sampler's default warmup_every): a small forward-facing scene learns too little in 100
# steps with 64 there (plugins/ngp/tests/test_ngp_spaces.py). Each refresh keeps at least
# decay x a cell's old opacity; at Instant-NGP's 0.95 the cells the early, blurred density
# filled stay occupied for hundreds of steps and every step marches and culls them (lego,
# 120 s: 28.97, 28.44, 28.96 dB at 0.95; 30.36 and 30.55 at 0.5)
SAMPLER_DEFAULTS = {"update_every": 64, "decay": 0.5}


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
    plugin is then a clash); for the ngp field choose occupancy-grid sampling (its grid
    refreshed every 64 steps), a steady sample budget and Instant-NGP's Adam settings
    (sec. 4), each unless the user set it.
    When the hash encoding feeds another field (``--set encoding=hash``), choose the
    occupancy grid and the sample budget for it too (not the Adam settings; SDF fields
    are handed back the default sampler in ``atlas_wrap_field``)."""
    if "field" not in config.explicit:
        config.field.name = "ngp"
    if config.field.name != "ngp":
        if config.encoding.name == "hash":
            # nerfae on the hash encoding, lego, 300 s: 21.34 dB stratified, 25.13 with the
            # occupancy grid at 2^16 samples per step, 30.89 at 2^14
            prefer_occupancy(config, TARGET_SAMPLES)
        return
    prefer_occupancy(config, TARGET_SAMPLES)
    if config.sampler.name == "occupancy":
        for key, value in SAMPLER_DEFAULTS.items():
            config.sampler.options.setdefault(key, value)
    for key, value in TRAIN_DEFAULTS.items():
        if f"train.{key}" not in config.explicit:
            setattr(config.train, key, value)


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> None:
    """Give an SDF field on the hash encoding back the default sampler and batch: grown
    from a sphere, its density starts only near the sphere, and the occupancy grid
    would cull what it has not reached yet (VolSDF's MLP on the hash encoding, lego,
    300 s: 19.20 dB with the stratified sampler, 10.69 with the occupancy grid), unless
    occupancy-sampler options were set."""
    chosen_here = config.field.name != "ngp" and config.claimed.get("sampler") == "ngp"
    if not chosen_here or config.sampler.options or first_with(field, HasSDF) is None:
        return  # options set for the occupancy sampler keep it
    default = RunConfig()
    config.sampler.name = default.sampler.name
    if "train.target_samples" not in config.explicit:
        config.train.target_samples = default.train.target_samples
