"""The images' encoding: rendered linear light to the values the images store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from atlas_core.api import DataError, short

SRGB_KNEE = 0.0031308  # IEC 61966-2-1: linear below, a 1/2.4 power above
ENCODINGS = ("linear", "srgb")
FLOAT_SUFFIXES = (".exr", ".hdr")  # high-dynamic-range files hold linear values


def srgb(linear: Tensor) -> Tensor:
    """The sRGB transfer function of linear values (clamped at zero), as renderers encode
    8-bit images (Blender's PNGs among them); inverse renderers such as NeRFactor (Zhang et
    al. 2021) and TensoIR (Jin et al. 2023) shade in linear light and encode before the loss."""
    x = linear.clamp_min(0.0)
    power = 1.055 * x.clamp_min(SRGB_KNEE) ** (1 / 2.4) - 0.055  # no infinite slope at 0
    return torch.where(x <= SRGB_KNEE, 12.92 * x, power)


def png_gamma(file: Path) -> float | None:
    """A PNG's ``gAMA`` chunk (1.0: linear values), or None without one."""
    if file.suffix.lower() != ".png":
        return None
    from PIL import Image

    try:
        with Image.open(file) as image:
            gamma = image.info.get("gamma")
    except OSError:  # not a readable PNG: the loader says so
        return None
    return float(gamma) if gamma else None


def meta_encoding(path: Path, meta: dict[str, Any]) -> str | None:
    """The encoding a transforms JSON declares (its top-level ``encoding``), or None."""
    value = meta.get("encoding")
    if value is not None and value not in ENCODINGS:
        raise DataError(f"{path}: encoding must be 'linear' or 'srgb', got {short(value)}")
    return value


def declared_encoding(path: Path, meta: dict[str, Any], first_image: Path) -> str:
    """How a split's images encode light: the JSON's ``encoding`` (``linear`` or ``srgb``),
    else linear for float images (EXR, HDR) and PNGs whose ``gAMA`` is 1, else sRGB, which
    is what 8-bit files without a declaration hold (the PNG and JPEG default)."""
    declared = meta_encoding(path, meta)
    if declared is not None:
        return declared
    if first_image.suffix.lower() in FLOAT_SUFFIXES:
        return "linear"
    gamma = png_gamma(first_image)
    return "linear" if gamma is not None and abs(gamma - 1.0) < 0.01 else "srgb"
