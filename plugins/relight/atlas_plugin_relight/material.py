"""Spatially varying material: a head maps a surface point to every model's parameters,
and the reflectance is the weighted mixture of the chosen models.

The point is encoded by a dense feature grid (``relight.encoding=grid``: trilinear
features as in DVGO, Sun et al. 2022, fine enough for texture at 128 vertices) or by
NeRF's positional encoding (``positional``: a smooth MLP, as in NeRV's reflectance MLP).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from atlas_core.api import PositionalEncoding, grid, mlp, tag_parameter
from atlas_plugin_relight.brdf import GGX, BlinnPhong, Diffuse, Reflectance
from atlas_plugin_relight.learned_brdf import (
    FourierReflectance,
    MLPReflectance,
    SHReflectance,
)
from atlas_plugin_relight.options import RelightOptions

GRID_LR_SCALE = 20.0  # grid values learn faster than network weights (DVGO's feature rate)
UNIT_BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def make_reflectance(name: str, options: RelightOptions) -> Reflectance:
    """One reflectance model by name."""
    if name == "sh":
        return SHReflectance(options.sh_degree)
    if name == "fourier":
        return FourierReflectance(options.fourier_terms)
    if name == "mlp":
        return MLPReflectance(min(options.width, 32))
    return {"diffuse": Diffuse, "blinn_phong": BlinnPhong, "ggx": GGX}[name]()


class GridEncoding(nn.Module):
    """Trilinear features [N, F] from a dense grid over the scene box (zero outside)."""

    def __init__(self, bounds: tuple[float, ...], resolution: int, features: int):
        super().__init__()
        low, high = torch.tensor(bounds[:3]), torch.tensor(bounds[3:])
        self.register_buffer("low", low.float())
        self.register_buffer("high", high.float())
        self.shape = grid.grid_shape(tuple((high - low).tolist()), resolution)
        values = 1e-4 * torch.randn(math.prod(self.shape), features)
        self.values = nn.Parameter(values)
        tag_parameter(self.values, lr_scale=GRID_LR_SCALE, masked_updates=True,
                      grid_shape=self.shape)  # fmt: skip
        self.out_dim = features

    def forward(self, x: Tensor) -> Tensor:
        """Features at positions [N, 3]."""
        sparse = self.training and torch.is_grad_enabled()
        return grid.sample(self.values, x, self.low, self.high, self.shape, sparse)[0]


class Material(nn.Module):
    """``brdf(x, n, wi, wo) = sum_k w_k f_k(theta_k(x); n, wi, wo)`` with theta from one head."""

    def __init__(self, options: RelightOptions, bounds: tuple[float, ...] = UNIT_BOX):
        super().__init__()
        self.models = nn.ModuleList(make_reflectance(n, options) for n in options.reflectance)
        self.weights = options.mixture_weights()
        self.sizes = [model.params for model in self.models]
        if options.encoding == "grid":
            self.encoding = GridEncoding(bounds, options.grid_resolution, options.grid_features)
        else:
            self.encoding = PositionalEncoding(3, options.frequencies)
        self.head = mlp(self.encoding.out_dim, options.width, 2, sum(self.sizes))

    def parameters_at(self, x: Tensor, features: Tensor | None = None) -> Tensor:
        """Raw parameters [R, P] of every model at surface points [R, 3] (``features``:
        ``encoding(x)`` when the caller has it already)."""
        return self.head(self.encoding(x) if features is None else features)

    def forward(self, x: Tensor, n: Tensor, wi: Tensor, wo: Tensor,
                features: Tensor | None = None) -> Tensor:  # fmt: skip
        """Mixed BRDF values [R, L, 3] for lights ``wi`` [R, L, 3] and view ``wo`` [R, 3]."""
        raw = torch.split(self.parameters_at(x, features), self.sizes, dim=-1)
        values = [
            w * m(p, n, wi, wo) for w, m, p in zip(self.weights, self.models, raw, strict=True)
        ]
        return torch.stack(values).sum(dim=0)
