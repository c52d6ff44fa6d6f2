"""Sine layers with the SIREN initialisation (Sitzmann et al. 2020, sec. 3.2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SineLayer(nn.Module):
    """``sin(w0 * (W x + b))`` with SIREN's uniform initialisation of ``W``.

    Sitzmann et al. 2020, "Implicit Neural Representations with Periodic Activation
    Functions", sec. 3.2: the first layer (on raw coordinates) draws ``W`` from
    ``U(-1/n, 1/n)``; later layers from ``U(-sqrt(6/n)/w0, sqrt(6/n)/w0)``, so that
    ``w0 * W x`` is standard-normal-like and each output is arcsine distributed in
    [-1, 1] (std 1/sqrt(2)) at any depth. ``n`` is the number of inputs.
    """

    def __init__(self, in_dim: int, out_dim: int, w0: float = 30.0, first: bool = False):
        super().__init__()
        if not w0 > 0:
            raise ValueError("w0 must be > 0")
        self.w0 = w0
        self.linear = nn.Linear(in_dim, out_dim)
        bound = 1.0 / in_dim if first else math.sqrt(6.0 / in_dim) / w0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Map [N, in_dim] to [N, out_dim] in [-1, 1]."""
        return torch.sin(self.w0 * self.linear(x))


def siren_linear(in_dim: int, out_dim: int, w0: float) -> nn.Linear:
    """A final linear layer initialised like a hidden sine layer (SIREN's output layer)."""
    layer = nn.Linear(in_dim, out_dim)
    bound = math.sqrt(6.0 / in_dim) / w0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
    return layer
