"""Losses on whole image crops: FFT magnitudes, SSIM and MS-SSIM.

They need a crop batch (``train.batch = crops`` or ``views``): per-ray colours are
reshaped to [B, h, w, C] with the layout in ``rays.extras["crop"]`` (``atlas_core.crops``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atlas_core.errors import AtlasError
from atlas_core.nerf.crops import crop_shape
from atlas_core.nerf.losses import ColourLoss
from atlas_core.nerf.metrics import ssim_maps
from atlas_core.nerf.rays import RayBundle

__all__ = [
    "CropLoss",
    "FFTLoss",
    "MSSSIMLoss",
    "MS_SSIM_WEIGHTS",
    "SSIMLoss",
    "as_images",
    "ms_ssim",
]

# Wang, Simoncelli and Bovik 2003, "Multi-scale structural similarity", sec. 3.2
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def as_images(values: Tensor, rays: RayBundle) -> Tensor:
    """Per-ray values [B*h*w, C] of a crop batch as images [B, C, h, w]."""
    shape = crop_shape(rays)
    if shape is None:
        raise AtlasError("an image loss needs a batch of crops: set train.batch=crops or views")
    count, height, width = shape
    return values.view(count, height, width, -1).permute(0, 3, 1, 2)


class CropLoss(ColourLoss):
    """A colour loss computed on images [B, C, h, w]; needs ``train.batch`` crops or views."""

    needs_crops = True

    def error(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Reshape both to images and compare them."""
        return self.image_error(as_images(prediction, rays), as_images(target, rays))

    def image_error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Error between image batches [B, C, h, w]."""
        raise NotImplementedError


class FFTLoss(CropLoss):
    """L1 distance between the 2D Fourier magnitudes of predicted and target crops."""

    def image_error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Mean absolute difference of orthonormal FFT magnitudes per channel."""
        spectrum = torch.fft.rfft2(prediction, norm="ortho").abs()
        return (spectrum - torch.fft.rfft2(target, norm="ortho").abs()).abs().mean()


class SSIMLoss(CropLoss):
    """1 - SSIM (Wang et al. 2004): 0 for identical crops, 11x11 Gaussian window."""

    def image_error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """One minus the mean SSIM."""
        return 1.0 - ssim_maps(prediction, target)[0].mean()


def ms_ssim(prediction: Tensor, target: Tensor, min_size: int = 11) -> Tensor:
    """MS-SSIM (Wang et al. 2003, eq. 7) of image batches [B, C, h, w].

    Uses as many of the five scales as the crop allows (each halving must leave at least
    ``min_size`` pixels, the window width), with the paper's weights renormalised to sum
    to one; contrast-structure terms are clamped at a small positive value so their
    fractional powers stay defined (SSIM can be negative on untrained crops).
    """
    side = min(prediction.shape[-2:])
    scales = max(1, min(len(MS_SSIM_WEIGHTS), int(math.log2(max(side / min_size, 1))) + 1))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=prediction.dtype)
    weights = (weights / weights.sum()).tolist()
    value = prediction.new_ones(())
    for scale, weight in enumerate(weights):
        full, cs = ssim_maps(prediction, target)
        last = scale == scales - 1
        term = (full if last else cs).mean().clamp_min(1e-6)
        value = value * term**weight
        if not last:
            prediction = torch.nn.functional.avg_pool2d(prediction, 2)
            target = torch.nn.functional.avg_pool2d(target, 2)
    return value


class MSSSIMLoss(CropLoss):
    """1 - MS-SSIM (Wang et al. 2003) over the scales the crop size allows."""

    def image_error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """One minus the multi-scale SSIM."""
        return 1.0 - ms_ssim(prediction, target)
