"""DTU scans for NeRF Atlas: the ``dtu`` data kind (IDR/VolSDF layout) and a ``mask`` loss.

``atlas run --data SCAN --data-kind dtu --plugins dtu,volsdf`` loads ``image/``,
``mask/`` and ``cameras.npz`` (see :mod:`atlas_plugin_dtu.data`);
``--set losses.mask=W`` adds the opacity-vs-mask cross-entropy. The plugin claims no
slot, so it composes with any field, sampler and renderer. ``atlas-dtu-synth OUT``
writes a small scan in this layout (:mod:`atlas_plugin_dtu.synth`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_core.api import ConfigError, Register, hookimpl
from atlas_plugin_dtu.data import load_dtu
from atlas_plugin_dtu.losses import MaskLoss
from atlas_plugin_dtu.projection import decompose, rq
from atlas_plugin_dtu.synth import generate

if TYPE_CHECKING:
    from atlas_core.api import RunConfig

__all__ = [
    "GRID_WARMUP_STEPS",
    "LOSS_GAMMA",
    "PHOTO_CONSISTENCY",
    "MaskLoss",
    "decompose",
    "load_dtu",
    "rq",
]
__version__ = "1.0.0"

NAME = "dtu"
# volsdf_grid's density warm-up on a scan (volsdf's default: 150). Seen from one side and
# above, a scan's plate kept a haze up to 0.1 (scene units) above it after 150 steps, so
# the conversion put it 3-6 voxels too high; after 300 steps the haze is gone
# (DTU-layout scene, 600 s: Chamfer 1.64% -> 1.25% of the objects' size, 29.34 -> 30.52
# dB; 500 steps: 1.23%, 30.47). Not volsdf's default: on the 360-degree synth scene it
# left an inner surface in a hollow object until volsdf_grid sealed pinholes
# (benchmarks/results/surfaces-2026-12-06.md).
GRID_WARMUP_STEPS = 300
# volsdf's photo_consistency term (Geo-NeuS's patch NCC across nearby views) on a scan's
# volsdf_grid: the plate in the objects' shadows, where the colour loss has little to fit,
# comes down to its true height (DTU-layout scene, 600 s: Chamfer 1.16% of the objects'
# size against 1.23-1.28% without it, a 200 px scan 1.04% against 1.30%; 0.05: 1.20%,
# 0.1: 1.27% and 0.8 dB less)
PHOTO_CONSISTENCY = 0.02
# the colour loss on colours ** (1 / 2.2) for a scan's volsdf_grid: under the scan's fixed
# light the plate in the objects' shadows is dark, and this weighs its differences more
# (DTU-layout scene, 600 s, with the term above: Chamfer 1.14% and 1.15% against 1.16%;
# the 200 px scan 1.01% against 1.04%, 31.68 against 31.27 dB)
LOSS_GAMMA = 2.2


@hookimpl
def atlas_register_datasets(register: Register) -> None:
    """DTU scans in the IDR layout."""
    register(NAME, load_dtu, description="IDR/VolSDF layout: image/, mask/, cameras.npz",
             synth=generate)  # fmt: skip


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """Opacity against mask."""
    register("mask", MaskLoss, description="binary cross-entropy of opacity vs alpha (mask)")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Refuse a mask loss on a scan loaded without its masks; on a scan, ``volsdf_grid``'s
    warm-up lasts ``GRID_WARMUP_STEPS``, volsdf's ``photo_consistency`` term weighs
    ``PHOTO_CONSISTENCY`` and ``train.loss_gamma`` is ``LOSS_GAMMA``, unless set."""
    masks_off = config.data.options.get("use_mask") is False
    if config.data.kind == NAME and "mask" in config.losses and masks_off:
        raise ConfigError(
            "plugin 'dtu': losses.mask needs the scan's masks, but data.use_mask=false "
            "(every pixel would count as object); drop one of the two"
        )
    if config.data.kind == NAME and config.field.name == "volsdf_grid":
        config.field.options.setdefault("warmup_steps", GRID_WARMUP_STEPS)
        config.losses.setdefault("photo_consistency", PHOTO_CONSISTENCY)
        if "train.loss_gamma" not in config.explicit:
            config.train.loss_gamma = LOSS_GAMMA
