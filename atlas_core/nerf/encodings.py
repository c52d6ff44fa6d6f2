"""Input encodings: map coordinates to features for an MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from atlas_core.nerf.rays import RaySamples

__all__ = ["Encoding", "IdentityEncoding", "PositionalEncoding"]


class Encoding(nn.Module):
    """Base class: ``forward(x [N, in_dim]) -> [N, out_dim]``."""

    in_dim: int
    out_dim: int

    def encode_samples(self, samples: RaySamples) -> Tensor:
        """Encode sample positions; cone-aware encodings override this (Mip-NeRF)."""
        return self(samples.positions)


class PositionalEncoding(Encoding):
    """NeRF's frequency encoding (Mildenhall et al. 2020, eq. 4).

    ``gamma(x) = (x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x))``,
    without the factor pi, as in the authors' code; ``include_input`` keeps the
    identity term.
    """

    def __init__(self, in_dim: int = 3, frequencies: int = 10, include_input: bool = True):
        super().__init__()
        if frequencies < 0:
            raise ValueError("frequencies must be >= 0")
        self.in_dim = in_dim
        self.include_input = include_input
        self.register_buffer("freqs", 2.0 ** torch.arange(frequencies), persistent=False)
        self.out_dim = in_dim * (2 * frequencies + int(include_input))

    def forward(self, x: Tensor) -> Tensor:
        """Encode [N, in_dim] to [N, out_dim]."""
        scaled = (x[..., None, :] * self.freqs[:, None]).flatten(-2)
        parts = [torch.sin(scaled), torch.cos(scaled)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=-1)


class IdentityEncoding(Encoding):
    """Pass coordinates through unchanged."""

    def __init__(self, in_dim: int = 3):
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x``."""
        return x
