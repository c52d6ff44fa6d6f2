"""SIREN's first layer as a position encoding: learned sine features."""

from __future__ import annotations

from torch import Tensor

from atlas_core.api import Encoding
from atlas_plugin_siren.layers import SineLayer


class SirenEncoding(Encoding):
    """``sin(w0 * (W x + b))``: ``features`` learned sine features of the coordinates.

    The first layer of a SIREN (Sitzmann et al. 2020, sec. 3.2), with its
    initialisation ``W ~ U(-1/n, 1/n)``; ``w0`` sets the frequency range (30 in the
    paper, for coordinates in [-1, 1]).
    """

    def __init__(self, in_dim: int = 3, features: int = 128, w0: float = 30.0):
        super().__init__()
        if features < 1:
            raise ValueError("features must be >= 1")
        self.in_dim, self.out_dim = in_dim, features
        self.layer = SineLayer(in_dim, features, w0, first=True)

    def forward(self, x: Tensor) -> Tensor:
        """Encode [N, in_dim] to [N, features]."""
        return self.layer(x)
