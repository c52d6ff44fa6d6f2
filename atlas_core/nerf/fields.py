"""Fields: map packed RaySamples to per-sample outputs keyed by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.nerf.encodings import PositionalEncoding
from atlas_core.nerf.mlp import mlp, trunc_exp
from atlas_core.nerf.rays import RaySamples

if TYPE_CHECKING:
    from atlas_core.build import BuildContext

__all__ = ["Field", "NeRFField", "TinyField"]


class Field(nn.Module):
    """Base class: ``forward(samples) -> {"density": [N, 1], "rgb": [N, 3], ...}``.

    Optional capabilities are declared by implementing them (see
    ``atlas_core.capabilities``): ``density(positions, times)`` for occupancy grids and
    importance sampling (``HasDensity``), ``sdf(positions)`` for SDF fields (``HasSDF``),
    ``sample_step`` (``HasSampleStep``), ``grow(step)`` (``Grows``).
    """

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Evaluate the field at every sample."""
        raise NotImplementedError


class TinyField(Field):
    """One small MLP of the encoded position to density and view-independent colour."""

    def __init__(self, context: BuildContext, width: int = 64, depth: int = 3):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be >= 1")
        self.encoding = context.make_encoding(3)
        self.mlp = mlp(self.encoding.out_dim, width, depth, 4)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density (exp activation) and sigmoid colour per sample."""
        raw = self.mlp(self.encoding.encode_samples(samples))
        return {"density": trunc_exp(raw[:, :1] - 1.0), "rgb": torch.sigmoid(raw[:, 1:])}

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density at world positions."""
        return trunc_exp(self.mlp(self.encoding(positions))[:, :1] - 1.0)


class NeRFField(Field):
    """The original NeRF MLP (Mildenhall et al. 2020, fig. 7).

    ``depth`` layers of ``width`` with the encoded input concatenated again after the
    layers listed in ``skips``; a density head; then the view-direction branch (one
    layer of ``head_width``) for colour.
    """

    def __init__(
        self,
        context: BuildContext,
        depth: int = 8,
        width: int = 256,
        skips: tuple[int, ...] = (4,),
        head_width: int = 128,
        dir_frequencies: int = 4,
    ):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be >= 1")
        if any(not 0 <= s < depth - 1 for s in skips):
            raise ValueError("skips must name hidden layers before the last one")
        self.encoding = context.make_encoding(3)
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        self.skips = set(skips)
        in_dim = self.encoding.out_dim
        self.layers = nn.ModuleList()
        dim = in_dim
        for i in range(depth):
            self.layers.append(nn.Linear(dim, width))
            dim = width + (in_dim if i in self.skips else 0)
        self.density_head = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.rgb_head = nn.Sequential(
            nn.Linear(width + self.dir_encoding.out_dim, head_width),
            nn.ReLU(inplace=True),
            nn.Linear(head_width, 3),
        )

    def trunk(self, encoded: Tensor) -> Tensor:
        """The position MLP with its skip connections."""
        h = encoded
        for i, layer in enumerate(self.layers):
            h = torch.relu(layer(h))
            if i in self.skips:
                h = torch.cat([h, encoded], dim=-1)
        return h

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density at world positions."""
        return torch.relu(self.density_head(self.trunk(self.encoding(positions))))

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density (ReLU) and view-dependent sigmoid colour per sample."""
        h = self.trunk(self.encoding.encode_samples(samples))
        density = torch.relu(self.density_head(h))
        views = self.dir_encoding(samples.directions)
        rgb = torch.sigmoid(self.rgb_head(torch.cat([self.feature(h), views], dim=-1)))
        return {"density": density, "rgb": rgb}
