"""VolSDF's density: a scaled Laplace CDF of the negated SDF (Yariv et al. 2021, eq. 2-3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def laplace_cdf(s: Tensor, beta: Tensor) -> Tensor:
    """CDF of the zero-mean Laplace distribution with scale ``beta`` (VolSDF eq. 3).

    ``0.5 exp(s / beta)`` for ``s <= 0`` and ``1 - 0.5 exp(-s / beta)`` for ``s > 0``,
    each branch an ``exp`` of a non-positive argument, so neither overflows. The lower
    tail is computed directly, not as ``0.5 + 0.5 expm1(s / beta)``, which cancels to 0
    past ``-17 beta`` in float32; clamping (not ``abs``) keeps the derivative at 0.
    """
    lower = 0.5 * torch.exp(s.clamp(max=0.0) / beta)
    upper = 1.0 - 0.5 * torch.exp(-s.clamp(min=0.0) / beta)
    return torch.where(s <= 0, lower, upper)


class LaplaceDensity(nn.Module):
    """``sigma(x) = (1 / beta) * Psi_beta(-d(x))`` with a learned ``beta > beta_min``.

    VolSDF eq. 2 with ``alpha = 1 / beta``; ``beta = beta_min + |beta_param|`` keeps the
    scale positive whatever the optimiser does to the raw parameter.
    """

    def __init__(self, beta_init: float = 0.1, beta_min: float = 1e-4):
        super().__init__()
        if beta_min <= 0 or beta_init <= beta_min:
            raise ValueError("need 0 < beta_min < beta_init")
        self.beta_min = beta_min
        self.beta_param = nn.Parameter(torch.tensor(beta_init - beta_min))

    @property
    def beta(self) -> Tensor:
        """The current (positive) Laplace scale."""
        return self.beta_min + self.beta_param.abs()

    def forward(self, sdf: Tensor) -> Tensor:
        """Density [N, 1] from signed distances [N, 1] (negative inside)."""
        beta = self.beta
        return laplace_cdf(-sdf, beta) / beta
