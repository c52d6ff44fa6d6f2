"""Colour transforms applied to rendered and target images before a loss.

Order: sRGB decoding to linear light (IEC 61966-2-1), tone mapping ``x / (1 + x)``
(Reinhard et al. 2002, eq. 3), then gamma ``x ** (1 / gamma)``, then the colour space.
All act on the last axis (3 channels).
Hue is compared as a plain number in [0, 1] (not wrapped around the colour circle).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "CONVERT",
    "LUMA",
    "LossColour",
    "SRGB_TO_XYZ",
    "Space",
    "linear_to_srgb",
    "luminance",
    "rgb_to_hsv",
    "rgb_to_xyz",
    "srgb_to_linear",
]

Space = typing.Literal["rgb", "hsv", "luminance", "xyz"]

# linear sRGB (D65 white) to CIE XYZ, IEC 61966-2-1
SRGB_TO_XYZ = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)
LUMA = (0.2126, 0.7152, 0.0722)  # the Y row of SRGB_TO_XYZ (Rec. 709 luminance)
SRGB_KNEE = 0.0031308  # IEC 61966-2-1: linear below (slope 12.92), a 1/2.4 power above


def linear_to_srgb(linear: Tensor) -> Tensor:
    """The sRGB transfer function (IEC 61966-2-1) of linear values, clamped at zero, as
    renderers and cameras encode 8-bit images."""
    x = linear.clamp_min(0.0)
    power = 1.055 * x.clamp_min(SRGB_KNEE) ** (1 / 2.4) - 0.055  # no infinite slope at 0
    return torch.where(x <= SRGB_KNEE, 12.92 * x, power)


def srgb_to_linear(encoded: Tensor) -> Tensor:
    """Linear light of sRGB-encoded values, clamped at zero: the exact inverse of
    ``linear_to_srgb`` (slope 1 / 12.92 at black, so darks keep a finite gradient)."""
    x = encoded.clamp_min(0.0)
    power = ((x.clamp_min(12.92 * SRGB_KNEE) + 0.055) / 1.055) ** 2.4
    return torch.where(x <= 12.92 * SRGB_KNEE, x / 12.92, power)


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """Hue, saturation, value in [0, 1] of RGB [..., 3] in [0, 1] (Smith 1978, hexcone)."""
    r, g, b = rgb.unbind(dim=-1)
    value = rgb.amax(dim=-1)
    chroma = value - rgb.amin(dim=-1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(
        value == r,
        ((g - b) / safe) % 6.0,
        torch.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = torch.where(chroma > 0, hue / 6.0, torch.zeros_like(hue))
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, 1.0), 0.0)
    return torch.stack([hue, saturation, value], dim=-1)


def rgb_to_xyz(rgb: Tensor) -> Tensor:
    """CIE XYZ [..., 3] of linear sRGB [..., 3] under D65."""
    matrix = torch.tensor(SRGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    return rgb @ matrix.T


def luminance(rgb: Tensor) -> Tensor:
    """Relative luminance Y [..., 1] of linear sRGB [..., 3]."""
    weights = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device)
    return (rgb * weights).sum(dim=-1, keepdim=True)


CONVERT = {"hsv": rgb_to_hsv, "xyz": rgb_to_xyz, "luminance": luminance}


@dataclass(frozen=True)
class LossColour:
    """Where a colour loss compares images: sRGB decoded, tone map, gamma, colour space."""

    space: Space = "rgb"
    tone_map: bool = False
    gamma: float = 1.0
    linear: bool = False  # decode sRGB-encoded images to linear light first

    @property
    def identity(self) -> bool:
        """True when the transform changes nothing (the default, skipped entirely)."""
        return self.space == "rgb" and not (self.tone_map or self.linear) and self.gamma == 1.0

    def __call__(self, rgb: Tensor) -> Tensor:
        """Transform images [..., 3]; the result has 3 channels (1 for luminance)."""
        if self.linear:
            rgb = srgb_to_linear(rgb)
        if self.tone_map:
            rgb = rgb / (1.0 + rgb)
        if self.gamma != 1.0:
            rgb = rgb.clamp_min(1e-8) ** (1.0 / self.gamma)  # clamp: finite gradient at 0
        if self.space != "rgb":
            rgb = CONVERT[self.space](rgb)
        return rgb
