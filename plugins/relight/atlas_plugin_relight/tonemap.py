"""The images' encoding: rendered linear light to the values the images store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atlas_core.api import DataError, short

ENCODINGS = ("linear", "srgb")
FLOAT_SUFFIXES = (".exr", ".hdr")  # high-dynamic-range files hold linear values


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
