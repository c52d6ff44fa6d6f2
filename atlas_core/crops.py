"""Batches of square image crops (or whole views) and the crop layout losses read back.

A crop batch holds B crops of h x w pixels, its rays ordered crop by crop, row-major
inside a crop. Each ray carries ``rays.extras["crop"]`` = (crop, row, col) within the
batch, so image losses (FFT, SSIM) can reshape per-ray colours to [B, h, w, C].
"""

from __future__ import annotations

import torch
from torch import Tensor

from atlas_core.data.scene import SceneData, Views, make_rays
from atlas_core.rays import RayBundle

CROP_KEY = "crop"


def crop_pixels(
    images: Tensor, tops: Tensor, lefts: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-pixel (image, row, col) of B crops and their (crop, row, col) layout [B*h*w, 3]."""
    count, device = len(images), images.device
    inner_rows = torch.arange(height, device=device).repeat_interleave(width)
    inner_cols = torch.arange(width, device=device).repeat(height)
    crop = torch.arange(count, device=device).repeat_interleave(height * width)
    inner_rows, inner_cols = inner_rows.repeat(count), inner_cols.repeat(count)
    rows = tops[crop] + inner_rows
    cols = lefts[crop] + inner_cols
    return images[crop], rows, cols, torch.stack([crop, inner_rows, inner_cols], dim=-1)


def crop_rays(
    views: Views,
    images: Tensor,
    tops: Tensor,
    lefts: Tensor,
    size: tuple[int, int],
    scene: SceneData,
) -> RayBundle:
    """Rays of B crops of ``size`` (h, w) with top-left pixels ``(tops, lefts)``."""
    indices, rows, cols, layout = crop_pixels(images, tops, lefts, *size)
    rays = make_rays(views, indices, rows, cols, scene)
    rays.extras[CROP_KEY] = layout
    return rays


def crop_shape(rays: RayBundle) -> tuple[int, int, int] | None:
    """(B, h, w) of a crop batch, or None when the rays are not whole crops in order."""
    layout = rays.extras.get(CROP_KEY)
    if layout is None or len(layout) == 0:
        return None
    count, height, width = (int(v) + 1 for v in layout.amax(dim=0))
    if count * height * width != len(rays):
        return None
    flat = (layout[:, 0] * height + layout[:, 1]) * width + layout[:, 2]
    if not torch.equal(flat, torch.arange(len(rays), device=flat.device)):
        return None
    return count, height, width
