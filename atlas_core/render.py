"""Volume rendering over packed samples (Max 1995; NeRF, Mildenhall et al. 2020, eq. 3)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from atlas_core.encodings import PositionalEncoding
from atlas_core.fields import mlp
from atlas_core.rays import RayBundle, RaySamples

Background = Literal["black", "white", "random", "learned"]


def segment_exclusive_cumsum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Per-ray exclusive cumulative sum of packed ``values`` [N] (sorted by ray)."""
    if values.numel() == 0:
        return values
    counts = torch.bincount(ray_indices, minlength=num_rays)
    if bool((counts == counts[0]).all()):
        dense = values.view(num_rays, -1)
        return (dense.cumsum(dim=1) - dense).reshape(-1)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(values.numel(), device=values.device) - starts[ray_indices]
    dense = values.new_zeros(num_rays, int(counts.max()))
    dense = dense.index_put((ray_indices, slot), values)
    return (dense.cumsum(dim=1) - dense)[ray_indices, slot]


def render_weights(density: Tensor, deltas: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Compositing weights ``w_i = T_i (1 - exp(-sigma_i delta_i))`` [N]."""
    tau = density.reshape(-1) * deltas.reshape(-1)
    transmittance = torch.exp(-segment_exclusive_cumsum(tau, ray_indices, num_rays))
    return transmittance * (1.0 - torch.exp(-tau))


def segment_sum(values: Tensor, ray_indices: Tensor, num_rays: int) -> Tensor:
    """Sum packed per-sample ``values`` [N, C] into per-ray totals [R, C]."""
    out = values.new_zeros(num_rays, values.shape[-1])
    return out.index_add(0, ray_indices, values)


class VolumeRenderer(nn.Module):
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
            return torch.sigmoid(self.background_mlp(self.dir_encoding(rays.directions)))
        value = 0.0 if kind == "black" else 1.0
        return rays.origins.new_full(shape, value)

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
        }
        if "normals" in outputs:
            result["normals"] = segment_sum(w * outputs["normals"], samples.ray_indices, num_rays)
        return result
