"""Spatially varying material: an MLP head maps a surface point to every model's parameters,
and the reflectance is the weighted mixture of the chosen models."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from atlas_core.api import PositionalEncoding, mlp
from atlas_plugin_relight.brdf import GGX, BlinnPhong, Diffuse, Reflectance
from atlas_plugin_relight.learned_brdf import (
    FourierReflectance,
    MLPReflectance,
    SHReflectance,
)
from atlas_plugin_relight.options import RelightOptions


def make_reflectance(name: str, options: RelightOptions) -> Reflectance:
    """One reflectance model by name."""
    if name == "sh":
        return SHReflectance(options.sh_degree)
    if name == "fourier":
        return FourierReflectance(options.fourier_terms)
    if name == "mlp":
        return MLPReflectance(min(options.width, 32))
    return {"diffuse": Diffuse, "blinn_phong": BlinnPhong, "ggx": GGX}[name]()


class Material(nn.Module):
    """``brdf(x, n, wi, wo) = sum_k w_k f_k(theta_k(x); n, wi, wo)`` with theta from one MLP."""

    def __init__(self, options: RelightOptions):
        super().__init__()
        self.models = nn.ModuleList(make_reflectance(n, options) for n in options.reflectance)
        self.weights = options.mixture_weights()
        self.sizes = [model.params for model in self.models]
        self.encoding = PositionalEncoding(3, options.frequencies)
        self.head = mlp(self.encoding.out_dim, options.width, 2, sum(self.sizes))

    def parameters_at(self, x: Tensor) -> Tensor:
        """Raw parameters [R, P] of every model at surface points [R, 3]."""
        return self.head(self.encoding(x))

    def forward(self, x: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """Mixed BRDF values [R, L, 3] for lights ``wi`` [R, L, 3] and view ``wo`` [R, 3]."""
        raw = torch.split(self.parameters_at(x), self.sizes, dim=-1)
        values = [
            w * m(p, n, wi, wo) for w, m, p in zip(self.weights, self.models, raw, strict=True)
        ]
        return torch.stack(values).sum(dim=0)
