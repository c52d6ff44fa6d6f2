"""Batches of square image crops (or whole views) and the crop layout losses read back.

A crop batch holds B crops of h x w pixels, its rays ordered crop by crop, row-major
inside a crop. Each ray carries ``rays.extras["crop"]`` = (crop, row, col) within the
batch, so image losses (FFT, SSIM) can reshape per-ray colours to [B, h, w, C].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atlas_core.capabilities import RendersViews
from atlas_core.data.scene import SceneData, Views, make_rays
from atlas_core.nerf.rays import RayBundle

__all__ = [
    "BLOCK_KEY",
    "CROP_KEY",
    "block_centres",
    "crop_pixels",
    "crop_rays",
    "crop_shape",
    "decimate",
    "ray_stride",
    "undo_blocks",
]

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


BLOCK_KEY = "block_rgba"


def ray_stride(pipeline: torch.nn.Module) -> int:
    """Pixels per rendered ray along each axis: a ``RendersViews`` renderer's ``ray_stride``
    (1 for every other renderer).

    A renderer that upsamples its images (neural rendering) renders one ray per
    ``stride`` x ``stride`` block of a crop; see ``decimate``.
    """
    renderer = pipeline.renderer
    return renderer.ray_stride if isinstance(renderer, RendersViews) else 1


def block_centres(count: int, height: int, width: int, stride: int, device: torch.device) -> Tensor:
    """Indices into B row-major ``height`` x ``width`` crops of each block's centre pixel
    (the pixel right and below of the centre when ``stride`` is even)."""
    rows = torch.arange(height // stride, device=device) * stride + stride // 2
    cols = torch.arange(width // stride, device=device) * stride + stride // 2
    inner = (rows[:, None] * width + cols[None, :]).reshape(-1)
    return (torch.arange(count, device=device)[:, None] * height * width + inner).reshape(-1)


def decimate(rays: RayBundle, stride: int) -> RayBundle:
    """One ray per ``stride`` block of a crop batch; each keeps its block's targets.

    The result is a crop batch of B x (h/stride) x (w/stride) rays; ``extras["block_rgba"]``
    [R, stride * stride, 4] holds each block's target pixels, row-major.
    """
    count, height, width = crop_shape(rays)
    low_h, low_w = height // stride, width // stride
    low = rays[block_centres(count, height, width, stride, rays.origins.device)]
    low.radii = low.radii * stride  # each ray now covers a block (cone footprint)
    zeros = torch.zeros(count, dtype=torch.long, device=rays.origins.device)
    low.extras[CROP_KEY] = crop_pixels(zeros, zeros, zeros, low_h, low_w)[3]
    if rays.rgba is not None:
        blocks = rays.rgba.view(count, low_h, stride, low_w, stride, 4).permute(0, 1, 3, 2, 4, 5)
        low.extras[BLOCK_KEY] = blocks.reshape(-1, stride * stride, 4)
    return low


def undo_blocks(blocks: Tensor, count: int, low_h: int, low_w: int) -> Tensor:
    """Per-ray blocks [B*h*w, s*s, C] back to full-resolution images [B, h*s, w*s, C]."""
    stride = math.isqrt(blocks.shape[1])
    grid = blocks.view(count, low_h, low_w, stride, stride, -1).permute(0, 1, 3, 2, 4, 5)
    return grid.reshape(count, low_h * stride, low_w * stride, -1)
