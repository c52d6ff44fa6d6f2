"""Gaussian random Fourier features (Tancik et al. 2020), optionally annealed."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atlas_core.api import Encoding


class FourierEncoding(Encoding):
    """``gamma(v) = [cos(2 pi B v), sin(2 pi B v)]`` with ``B ~ N(0, sigma^2)``.

    Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency Functions
    in Low Dimensional Domains", sec. 6 (Gaussian mapping). ``sigma`` is in cycles per
    world unit; ``features`` rows of B give ``2 * features`` outputs, plus the input
    when ``include_input``. The rows are sorted by frequency so that, with
    ``anneal_steps`` > 0, a cosine window opens them low to high over that many steps
    (coarse to fine, the window of Park et al. 2021, Nerfies, eq. 8, over ranks).
    """

    def __init__(
        self,
        in_dim: int = 3,
        features: int = 128,
        sigma: float = 2.0,
        include_input: bool = True,
        anneal_steps: int = 0,
    ):
        super().__init__()
        if features < 1:
            raise ValueError("features must be >= 1")
        if not sigma > 0:
            raise ValueError("sigma must be > 0")
        if anneal_steps < 0:
            raise ValueError("anneal_steps must be >= 0 (0 turns annealing off)")
        self.in_dim, self.features = in_dim, features
        self.include_input, self.anneal_steps = include_input, anneal_steps
        matrix = torch.randn(features, in_dim) * sigma
        self.register_buffer("matrix", matrix[matrix.norm(dim=1).argsort()])
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.out_dim = 2 * features + (in_dim if include_input else 0)

    def set_step(self, step: int) -> None:
        """Record the training step that the annealing window follows."""
        self.step.fill_(step)

    def window(self) -> Tensor:
        """Weight in [0, 1] of each frequency row [features] at the current step."""
        ranks = torch.arange(self.features, device=self.matrix.device, dtype=torch.float32)
        if self.anneal_steps == 0:
            return torch.ones_like(ranks)
        progress = (self.step.float() / self.anneal_steps).clamp(max=1.0)
        alpha = self.features * progress
        return 0.5 * (1.0 - torch.cos(math.pi * (alpha - ranks).clamp(0.0, 1.0)))

    def forward(self, x: Tensor) -> Tensor:
        """Encode [N, in_dim] to [N, out_dim]."""
        projected = 2.0 * math.pi * (x @ self.matrix.T)
        window = self.window().to(x.dtype)
        parts = [window * torch.cos(projected), window * torch.sin(projected)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=-1)
