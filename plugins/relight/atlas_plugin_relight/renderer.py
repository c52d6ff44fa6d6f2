"""The ``relight`` renderer: shade SDF surface points under point lights.

The surface point is made differentiable in the SDF's parameters by implicit
differentiation (IDR, Yariv et al. 2020, eq. 3): ``t = t0 - (f(x0) - f0) / (n0 . v)``
with ``f0``, ``n0`` held fixed. Rays that miss blend toward the background with a soft
coverage ``sigmoid(-alpha * min_t f)`` (IDR eq. 7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from atlas_core.api import ConfigError, RayBundle, RaySamples
from atlas_plugin_relight.integrators import make_integrator
from atlas_plugin_relight.shading import Shading
from atlas_plugin_relight.surface import HIT

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

MIN_GRAZE = 0.3  # |n . v| floor in the implicit step: grazing hits would amplify it


class RelightRenderer(Shading, nn.Module):
    """Material, light, shadow and integrator over the ``surface`` sampler's hit points."""

    def __init__(self, context: BuildContext, background: Literal["black", "white"] = "white"):
        super().__init__()
        options = self.init_shading(context, "renderer 'relight'")
        self.background = background
        self.alpha = options.soft_alpha
        low, high = context.scene.bounds[:3], context.scene.bounds[3:]
        extent = sum((b - a) ** 2 for a, b in zip(low, high, strict=True)) ** 0.5
        self.integrator = make_integrator(options.integrator, self.sdf, extent, options.steps)

    def background_color(self, rays: RayBundle) -> Tensor:
        """Per-ray background [R, 3]."""
        return rays.origins.new_full((len(rays), 3), 0.0 if self.background == "black" else 1.0)

    def forward(
        self, outputs: dict[str, Tensor], samples: RaySamples, background: Tensor
    ) -> dict[str, Tensor]:
        """Shaded colour, coverage, depth and normals per ray."""
        rays = samples.rays
        if HIT not in rays.extras or samples.t_starts.shape[0] != len(rays):
            raise ConfigError(
                "renderer 'relight' needs the 'surface' sampler (--set sampler=surface)"
            )
        if "sdf" not in outputs or "sdf_gradients" not in outputs:
            raise ConfigError("renderer 'relight' needs a field that outputs sdf and sdf_gradients")
        hit = rays.extras[HIT][:, None] > 0
        sdf, grad = outputs["sdf"], outputs["sdf_gradients"].detach()
        v = rays.directions
        cos = (grad * v).sum(-1, keepdim=True)
        cos = torch.where(cos < 0, cos.clamp(max=-MIN_GRAZE), cos.clamp(min=MIN_GRAZE))
        t = samples.t_starts - (sdf - sdf.detach()) / cos  # IDR eq. 3
        x = rays.origins + t * v
        normals = outputs["normals"]
        positions, power = self.lights(rays)
        radiance = self.integrator(self.material, self.shadow, x, normals, -v, positions, power)
        logit = -self.alpha * sdf
        coverage = torch.where(hit, torch.ones_like(sdf), torch.sigmoid(logit))
        return {
            "rgb": self.encode(coverage * radiance) + (1 - coverage) * background,
            "acc": coverage,
            "depth": t,
            "normals": normals * hit,
            "relight_logit": logit,
            "relight_hit": hit.float(),
        }
