"""Renderers: per-sample field outputs to per-ray images over a background."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from atlas_core.nerf.compositing import render_weights, segment_sum
from atlas_core.nerf.distortion import INTERVALS, RAY_INDICES
from atlas_core.nerf.encodings import PositionalEncoding
from atlas_core.nerf.mlp import mlp
from atlas_core.nerf.rays import RayBundle, RaySamples

__all__ = ["Background", "Renderer", "VolumeRenderer"]

Background = Literal["black", "white", "random", "learned"]
"""The background choices of ``VolumeRenderer``."""


class Renderer(nn.Module):
    """Base class: ``forward(outputs, samples, background) -> {"rgb": [R, 3], ...}``.

    The pipeline asks ``background_color`` for each batch's background, composites the
    targets over ``target_background`` and passes the background to ``forward``.
    """

    def background_color(self, rays: RayBundle) -> Tensor:
        """Per-ray background colour [R, 3] (white unless overridden)."""
        return rays.origins.new_ones(len(rays), 3)

    def target_background(self, rays: RayBundle, background: Tensor) -> Tensor:
        """The colour [R, 3] that transparent target pixels are composited over."""
        return background

    def forward(
        self, outputs: dict[str, Tensor], samples: RaySamples, background: Tensor
    ) -> dict[str, Tensor]:
        """Composite per-sample outputs into per-ray ``rgb``, ``acc``, ``depth``, ``weights``."""
        raise NotImplementedError


class VolumeRenderer(Renderer):
    """Alpha compositing of packed samples into rgb, depth, accumulation and weights.

    ``background``: black, white, random (uniform noise per ray while training, white
    when evaluating) or learned (a small MLP of the ray direction).
    """

    def __init__(self, background: Background = "white"):
        super().__init__()
        self.background = background
        if background == "learned":
            self.dir_encoding = PositionalEncoding(3, 4)
            self.background_mlp = mlp(self.dir_encoding.out_dim, 32, 1, 3)

    def background_color(self, rays: RayBundle) -> Tensor:
        """Per-ray background colour [R, 3]."""
        shape = (len(rays), 3)
        kind = self.background
        if kind == "random" and self.training:
            return torch.rand(shape, device=rays.origins.device)
        if kind == "learned":
            return torch.sigmoid(self.background_mlp(self.dir_encoding(rays.view_directions)))
        value = 0.0 if kind == "black" else 1.0
        return rays.origins.new_full(shape, value)

    def target_background(self, rays: RayBundle, background: Tensor) -> Tensor:
        """The rendered background, except white under a learned one (its targets)."""
        return torch.ones_like(background) if self.background == "learned" else background

    def forward(
        self, outputs: dict[str, Tensor], samples: RaySamples, background: Tensor
    ) -> dict[str, Tensor]:
        """Composite per-sample outputs into per-ray images over ``background``."""
        num_rays = samples.num_rays
        weights = render_weights(outputs["density"], samples.deltas, samples.ray_indices, num_rays)
        w = weights[:, None]
        mid = 0.5 * (samples.t_starts + samples.t_ends)
        acc = segment_sum(w, samples.ray_indices, num_rays)
        rgb = segment_sum(w * outputs["rgb"], samples.ray_indices, num_rays)
        depth = segment_sum(w * mid, samples.ray_indices, num_rays)
        result = {
            "rgb": rgb + (1.0 - acc) * background,
            "acc": acc,
            "depth": depth / acc.clamp_min(1e-6),
            "weights": weights,
            INTERVALS: torch.cat([samples.t_starts, samples.t_ends], dim=-1),
            RAY_INDICES: samples.ray_indices,
        }
        if "normals" in outputs:
            result["normals"] = segment_sum(w * outputs["normals"], samples.ray_indices, num_rays)
        return result
