"""The images' encoding: rendered linear light to the values the images store."""

from __future__ import annotations

import torch
from torch import Tensor

SRGB_KNEE = 0.0031308  # IEC 61966-2-1: linear below, a 1/2.4 power above


def srgb(linear: Tensor) -> Tensor:
    """The sRGB transfer function of linear values (clamped at zero), as renderers encode
    8-bit images (Blender's PNGs among them); inverse renderers such as NeRFactor (Zhang et
    al. 2021) and TensoIR (Jin et al. 2023) shade in linear light and encode before the loss."""
    x = linear.clamp_min(0.0)
    power = 1.055 * x.clamp_min(SRGB_KNEE) ** (1 / 2.4) - 0.055  # no infinite slope at 0
    return torch.where(x <= SRGB_KNEE, 12.92 * x, power)
