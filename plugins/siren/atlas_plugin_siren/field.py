"""A radiance field whose MLP uses sine activations (SIREN, Sitzmann et al. 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import Field, RaySamples, tag_parameter, trunc_exp
from atlas_plugin_siren.layers import SineLayer, siren_linear

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


class SirenField(Field):
    """The run's encoding, ``depth`` sine layers of ``width``, density and colour heads.

    With the ``siren`` encoding as the first layer this is the SIREN of Sitzmann et al.
    2020 (hidden layers initialised ``U(-sqrt(6/n)/w0, sqrt(6/n)/w0)``); any other
    encoding feeds the same sine MLP. Density is ``exp(raw - 1)``; colour is a sigmoid of
    a linear map of the features and the view direction. Sine MLPs want a smaller
    learning rate than ReLU ones (the paper uses 1e-4): the sine layers and heads learn
    at ``lr_scale`` times the run's rate; the encoding keeps its own.
    """

    def __init__(
        self,
        context: BuildContext,
        width: int = 128,
        depth: int = 3,
        w0: float = 30.0,
        lr_scale: float = 0.2,
    ):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be >= 1")
        if not lr_scale > 0:
            raise ValueError("lr_scale must be > 0")
        self.encoding = context.make_encoding(3)
        dims = [self.encoding.out_dim] + [width] * depth
        self.trunk = nn.Sequential(*(SineLayer(dims[i], dims[i + 1], w0) for i in range(depth)))
        self.density_head = siren_linear(width, 1, w0)
        self.rgb_head = siren_linear(width + 3, 3, w0)
        for module in (self.trunk, self.density_head, self.rgb_head):
            for param in module.parameters():
                tag_parameter(param, lr_scale=lr_scale)

    def features(self, positions: Tensor) -> Tensor:
        """Sine-MLP features [N, width] of world positions."""
        return self.trunk(self.encoding(positions))

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions."""
        return trunc_exp(self.density_head(self.features(positions)) - 1.0)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density and view-dependent sigmoid colour per sample."""
        h = self.trunk(self.encoding.encode_samples(samples))
        density = trunc_exp(self.density_head(h) - 1.0)
        rgb = torch.sigmoid(self.rgb_head(torch.cat([h, samples.directions], dim=-1)))
        return {"density": density, "rgb": rgb}
