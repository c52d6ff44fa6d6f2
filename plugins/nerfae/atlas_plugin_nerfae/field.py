"""The NeRF auto-encoder field: position -> latent material code -> density and colour.

An encoder MLP maps each point's position features (from the run's encoding, so
Fourier features or Mip-NeRF's integrated encoding work too) to a latent vector; a
density decoder reads the latent alone, a colour decoder the latent and the view
direction. The latents are returned as the field output ``latent`` for losses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.api import Field, PositionalEncoding, RaySamples, mlp, trunc_exp

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

Normalization = Literal["none", "l2", "layer"]
DENSITY_SHIFT = -1.0  # initial density about e^-1, as the core's tiny field


class LatentNorm(nn.Module):
    """``none``, ``l2`` (unit length) or ``layer`` (LayerNorm with a learned gain and bias)."""

    def __init__(self, kind: Normalization, size: int):
        super().__init__()
        if kind not in ("none", "l2", "layer"):
            raise ValueError(f"normalization must be none, l2 or layer, got {kind!r}")
        self.kind = kind
        self.layer = nn.LayerNorm(size) if kind == "layer" else None

    def forward(self, latent: Tensor) -> Tensor:
        """Normalise latents [N, size]."""
        if self.layer is not None:
            return self.layer(latent)
        if self.kind == "l2":
            return F.normalize(latent, dim=-1)
        return latent


class NeRFAEField(Field):
    """Encoder MLP (``depth`` x ``width``) to ``latent_size`` codes; two small decoders."""

    def __init__(
        self,
        context: BuildContext,
        latent_size: int = 32,
        normalization: Normalization = "none",
        width: int = 64,
        depth: int = 2,
        decoder_width: int = 64,
        dir_frequencies: int = 4,
    ):
        super().__init__()
        if latent_size < 1 or width < 1 or depth < 1 or decoder_width < 1:
            raise ValueError("latent_size, width, depth and decoder_width must be >= 1")
        self.normalization = normalization
        self.encoding = context.make_encoding(3)
        self.encoder = mlp(self.encoding.out_dim, width, depth, latent_size)
        self.norm = LatentNorm(normalization, latent_size)
        self.density_decoder = mlp(latent_size, decoder_width, 1, 1)
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        self.colour_decoder = mlp(latent_size + self.dir_encoding.out_dim, decoder_width, 1, 3)

    def latent(self, features: Tensor) -> Tensor:
        """Latent material codes [N, latent_size] of encoded positions."""
        return self.norm(self.encoder(features))

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density and view-dependent colour decoded from each sample's latent."""
        latent = self.latent(self.encoding.encode_samples(samples))
        density = trunc_exp(self.density_decoder(latent) + DENSITY_SHIFT)
        views = self.dir_encoding(samples.directions)
        rgb = torch.sigmoid(self.colour_decoder(torch.cat([latent, views], dim=-1)))
        return {"density": density, "rgb": rgb, "latent": latent}

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions [N, 3] (for occupancy grids)."""
        latent = self.latent(self.encoding(positions))
        return trunc_exp(self.density_decoder(latent) + DENSITY_SHIFT)
