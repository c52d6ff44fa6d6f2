"""Image reading with conversion to 8-bit RGBA, and downscaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from atlas_core.errors import DataError

__all__ = [
    "PALETTE_MODES",
    "decode",
    "decode_exr",
    "downscale_rgba",
    "is_palette",
    "read_rgba",
    "to_uint8",
]

PALETTE_MODES = ("P", "PA")  # palette images: read as RGBA to keep their transparency


def is_palette(path: Path) -> bool:
    """True for a palette image (False when its metadata cannot be read)."""
    try:
        return iio.immeta(path).get("mode") in PALETTE_MODES
    except Exception:  # noqa: BLE001 - decoding reports a bad file
        return False


def decode_exr(path: Path) -> np.ndarray:
    """An OpenEXR image as float32 [H, W, C] (R, G, B and A where present), linear values."""
    try:
        import OpenEXR
    except ImportError as exc:
        raise DataError(
            f"{path}: EXR images need the openexr package (pip install openexr), "
            "or convert them to PNG"
        ) from exc
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            found = exr.channels().items()
            channels = {name: np.asarray(c.pixels, np.float32) for name, c in found}
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
        raise DataError(f"{path}: not a readable EXR image ({exc})") from exc
    names = [name for name in ("R", "G", "B", "A") if name in channels]
    if not names or (len(names) > 1 and names[:3] != ["R", "G", "B"]):
        raise DataError(f"{path}: EXR image has channels {sorted(channels)}, not R, G, B (A)")
    return np.stack([channels[name] for name in names], axis=-1)


def decode(path: Path) -> np.ndarray:
    """Decode an image file to an array; any decoder failure is a DataError."""
    if path.suffix.lower() == ".exr":
        return decode_exr(path)
    try:
        with warnings.catch_warnings():  # imageio's plugin search warns on bad files
            warnings.simplefilter("ignore")
            if is_palette(path):
                return np.asarray(iio.imread(path, mode="RGBA"))
            return np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
        kind = type(exc).__name__
        if type(exc).__module__ != "builtins":
            kind = f"{type(exc).__module__}.{kind}"
        raise DataError(f"{path}: not a readable image (damaged or not an image: {kind})") from exc


def read_rgba(path: Path) -> np.ndarray:
    """Read an image as uint8 [H, W, 4]; gray (+alpha), RGB, palette, 16-bit and float
    (EXR: linear values clamped to [0, 1], no tone curve) are converted."""
    if not path.is_file():
        raise DataError(f"{path}: image file is missing")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: image file is empty (0 bytes)")
    image = decode(path)
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise DataError(f"{path}: unsupported pixel type {image.dtype}")
        image = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{path}: unsupported image shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"{path}: image has no pixels ({image.shape[1]}x{image.shape[0]})")
    channels = image.shape[2]
    if channels in (1, 2):
        gray, alpha = image[:, :, :1], image[:, :, 1:]
        image = np.concatenate([gray, gray, gray, alpha], axis=2)
    if image.shape[2] == 3:
        opaque = np.full(image.shape[:2] + (1,), 255, dtype=np.uint8)
        image = np.concatenate([image, opaque], axis=2)
    return np.ascontiguousarray(image)


def downscale_rgba(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Area-average uint8 RGBA images [N, H, W, 4] by an integer factor (premultiplied)."""
    if factor == 1:
        return images
    x = images.permute(0, 3, 1, 2).float() / 255.0
    x = torch.cat([x[:, :3] * x[:, 3:], x[:, 3:]], dim=1)
    x = torch.nn.functional.avg_pool2d(x, factor)
    alpha = x[:, 3:]
    rgb = torch.where(alpha > 0, x[:, :3] / alpha.clamp_min(1e-8), torch.zeros_like(x[:, :3]))
    x = torch.cat([rgb.clamp(0, 1), alpha], dim=1)
    return (x * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[H, W, C] float in [0, 1] to uint8 (rounded)."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
