"""Image quality metrics: PSNR and SSIM, on RGB images in [0, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["psnr", "ssim", "ssim_maps"]


def psnr(prediction: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float((prediction - target).square().mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(prediction: Tensor, target: Tensor, size: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) of [H, W, C] images in [0, 1].

    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, mean over the valid
    (unpadded) region and the channels: the usual NeRF convention, matching
    scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=1)``.
    """
    x = prediction.permute(2, 0, 1)[None].double()
    y = target.permute(2, 0, 1)[None].double()
    return float(ssim_maps(x, y, size, sigma)[0].mean())


def ssim_maps(x: Tensor, y: Tensor, size: int = 11, sigma: float = 1.5) -> tuple[Tensor, Tensor]:
    """Per-pixel SSIM and its contrast-structure part for batches [B, C, H, W] (valid region).

    Differentiable, so losses share it (Wang et al. 2004, eq. 13; ``cs`` is the product
    of its contrast and structure terms, used by MS-SSIM).
    """
    size = min(size, x.shape[-1], x.shape[-2])  # tiny images: shrink the window
    channels = x.shape[1]
    window = _gaussian_window(size, sigma, channels, x)

    def blur(image: Tensor) -> Tensor:
        return F.conv2d(image, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs, cs
