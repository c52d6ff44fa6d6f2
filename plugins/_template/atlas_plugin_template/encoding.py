"""The template's one component: coordinates times a constant."""

from __future__ import annotations

from torch import Tensor

from atlas_core.api import Encoding


class ScaledEncoding(Encoding):
    """``x -> scale * x``: the smallest useful encoding, with one option."""

    def __init__(self, in_dim: int = 3, scale: float = 1.0):  # keyword options: encoding.scale
        super().__init__()
        if scale == 0:
            raise ValueError("scale must not be 0")  # a ValueError becomes a one-line exit 2
        self.in_dim = self.out_dim = in_dim
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Encode [N, in_dim] to [N, in_dim]."""
        return self.scale * x
