"""Light transport at surface points: ``direct`` (one shadow ray per light) and ``path``
(plus one cosine-sampled indirect bounce), as in NeRV's one-bounce model (Srinivasan
et al. 2021, eq. 4-5) evaluated by Monte Carlo instead of learned visibility maps."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from atlas_plugin_relight.brdf import dot
from atlas_plugin_relight.intersect import intersect
from atlas_plugin_relight.learned_brdf import local_frame
from atlas_plugin_relight.lights import incident

SDF = Callable[[Tensor], Tensor]
OFFSET = 1e-2


def direct_light(material: nn.Module, shadow: nn.Module, x: Tensor, n: Tensor, wo: Tensor,
                 positions: Tensor, power: Tensor) -> Tensor:  # fmt: skip
    """``sum_l f(x, wi_l, wo) * power_l / d_l^2 * max(n.wi_l, 0) * V_l`` [R, 3]."""
    wi, dist, radiance = incident(x, positions, power)
    cos = dot(n[:, None, :], wi).clamp_min(0.0)
    visible = shadow(x, n, wi, dist)
    return (material(x, n, wi, wo) * radiance * cos * visible).sum(dim=1)


class DirectIntegrator(nn.Module):
    """Direct lighting only."""

    def forward(self, material: nn.Module, shadow: nn.Module, x: Tensor, n: Tensor, wo: Tensor,
                positions: Tensor, power: Tensor) -> Tensor:  # fmt: skip
        """Outgoing radiance [R, 3] toward ``wo``."""
        return direct_light(material, shadow, x, n, wo, positions, power)


def cosine_sample(n: Tensor) -> Tensor:
    """Directions [R, 3] with density cos(theta)/pi about each normal (Malley's method)."""
    u1, u2 = torch.rand(n.shape[0], 1, device=n.device), torch.rand(n.shape[0], 1, device=n.device)
    r, phi = torch.sqrt(u1), 2 * math.pi * u2
    t, b = local_frame(n)
    return r * torch.cos(phi) * t + r * torch.sin(phi) * b + torch.sqrt(1 - u1) * n


def surface_normals(sdf: SDF, x: Tensor) -> Tensor:
    """Unit SDF gradients [M, 3] at points, without a graph."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(sdf(x).sum(), x)
    return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-9)


class PathIntegrator(nn.Module):
    """Direct light plus one bounce: ``f(x, w, wo) L_direct(y, -w) * pi`` for one cosine-
    sampled ``w`` hitting the surface at ``y`` (the pi is the cosine pdf cancelled)."""

    def __init__(self, sdf: SDF, extent: float, steps: int):
        super().__init__()
        self.sdf, self.extent, self.steps = sdf, extent, steps

    def forward(self, material: nn.Module, shadow: nn.Module, x: Tensor, n: Tensor, wo: Tensor,
                positions: Tensor, power: Tensor) -> Tensor:  # fmt: skip
        """Outgoing radiance [R, 3] toward ``wo``."""
        result = direct_light(material, shadow, x, n, wo, positions, power)
        w = cosine_sample(n.detach())
        start = x.detach() + OFFSET * n.detach()
        near = torch.zeros_like(start[:, :1])
        hits = intersect("sphere", self.sdf, start, w, near, near + self.extent, self.steps)
        if not bool(hits.hit.any()):
            return result
        index = hits.hit.nonzero().squeeze(1)
        y = (start + hits.t * w)[index]
        ny = surface_normals(self.sdf, y)
        bounce = direct_light(material, shadow, y, ny, -w[index], positions[index], power[index])
        f = material(x[index], n[index], w[index][:, None, :], wo[index])[:, 0]
        indirect = torch.zeros_like(result).index_add(0, index, f * bounce * math.pi)
        return result + indirect


def make_integrator(kind: str, sdf: SDF, extent: float, steps: int) -> nn.Module:
    """The integrator the options choose."""
    return PathIntegrator(sdf, extent, steps) if kind == "path" else DirectIntegrator()
