"""Light visibility at surface points: none, hard or volume (marched through the SDF),
learned (an MLP).

NeRV (Srinivasan et al. 2021) learns visibility with a network instead of marching;
``hard`` is the exact test for an SDF: a shadow ray that reaches the surface is blocked.
It marches only inside the scene box: an SDF grid reads the distance to the box outside
it, which falls to nothing just past the face a step leaving the box lands behind, and
that had blocked about one shadow ray in twenty (11 of 202 shadowed pixels in a test
view of the realistic point-light scene: the black stipple on the lit plate).

``volume`` marches the same way and also sums the field's own density (its
``density()``, the core's ``HasDensity``) over the traced steps (trapezoids; the steps
shrink near a surface), so a shadow ray that grazes a blocker is as opaque as a camera
ray grazing it: a volume-rendered SDF's silhouettes lie
a few beta outside its zero level (VolSDF's Laplace density, Yariv et al. 2021), and
fitted to the images, the learned spheres of the realistic point-light scene sat 0.009
inside their true surfaces (beta 0.0025), so the zero level's shadows came out small.
It counts density only once a ray is ``CLEAR`` of every surface, so the surface it
leaves does not dim it (camera rays see that surface as the rendered one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from atlas_core.api import PositionalEncoding, clip_to_box, mlp
from atlas_plugin_relight.options import RelightOptions

OFFSET = 1e-2  # start shadow rays this far along the normal, off the surface
HIT = 1e-3
CLEAR = 2 * OFFSET  # ``volume`` counts density once a ray is this far from any surface


class NoShadow(nn.Module):
    """Every light is visible."""

    def forward(self, x: Tensor, n: Tensor, wi: Tensor, dist: Tensor) -> Tensor:
        """Ones [R, L, 1]."""
        return torch.ones_like(dist)


class HardShadow(nn.Module):
    """Sphere-trace from each point toward each light, inside ``bounds`` (the scene box,
    where the surfaces are); 0 where the SDF is reached first, else 1, or with
    ``extinction`` (the field's density at points) the transmittance along the way."""

    def __init__(self, sdf: Callable[[Tensor], Tensor], steps: int, bounds: tuple[float, ...],
                 extinction: Callable[[Tensor], Tensor] | None = None):  # fmt: skip
        super().__init__()
        self.sdf, self.steps, self.bounds, self.extinction = sdf, steps, bounds, extinction

    @torch.no_grad()
    def forward(self, x: Tensor, n: Tensor, wi: Tensor, dist: Tensor) -> Tensor:
        """Visibility [R, L, 1] (no gradient)."""
        lights = wi.shape[1]
        start = (x + OFFSET * n)[:, None, :].expand(-1, lights, -1).reshape(-1, 3)
        dirs, far = wi.reshape(-1, 3), dist.reshape(-1, 1)
        t = torch.zeros_like(far)
        _, far = clip_to_box(start, dirs, t, far, self.bounds)  # outside: unblocked
        blocked = torch.zeros_like(far, dtype=torch.bool)
        depth, last, step = torch.zeros_like(far), torch.zeros_like(far), torch.zeros_like(far)
        away = torch.zeros_like(blocked)  # clear of the surface the ray starts on
        for _ in range(self.steps):
            active = ~blocked & (t < far)
            if not bool(active.any()):
                break
            points = start + t * dirs
            value = self.sdf(points)
            if self.extinction is not None:  # trapezoids over the traced steps
                away = away | (value > CLEAR)
                counted = (away & active).view(-1)
                sigma = torch.zeros_like(value)
                if bool(counted.any()):
                    sigma[counted] = self.extinction(points[counted])
                depth = torch.where(active, depth + 0.5 * (sigma + last) * step, depth)
                last = sigma
            blocked = blocked | (active & (value < HIT))
            step = torch.where(active, value.clamp_min(HIT), torch.zeros_like(step))
            t = t + step
        visible = (~blocked).float() * torch.exp(-depth)
        return visible.view(-1, lights, 1)


class LearnedShadow(nn.Module):
    """``sigmoid(MLP(gamma(x), wi))``, started near fully visible."""

    def __init__(self, width: int = 32, frequencies: int = 4):
        super().__init__()
        self.encoding = PositionalEncoding(3, frequencies)
        self.net = mlp(self.encoding.out_dim + 3, width, 2, 1)
        nn.init.constant_(self.net[-1].bias, 3.0)

    def forward(self, x: Tensor, n: Tensor, wi: Tensor, dist: Tensor) -> Tensor:
        """Visibility in (0, 1) [R, L, 1]."""
        encoded = self.encoding(x)[:, None, :].expand(-1, wi.shape[1], -1)
        return torch.sigmoid(self.net(torch.cat([encoded, wi], dim=-1)))


def make_shadow(
    options: RelightOptions,
    sdf: Callable[[Tensor], Tensor],
    bounds: tuple[float, ...],
    extinction: Callable[[Tensor], Tensor] | None = None,
) -> nn.Module:
    """The shadow test the options choose (``hard`` and ``volume`` march inside
    ``bounds``; ``volume`` needs ``extinction``)."""
    if options.shadow in ("hard", "volume"):
        return HardShadow(sdf, options.steps, bounds, extinction)
    if options.shadow == "learned":
        return LearnedShadow(min(options.width, 32))
    return NoShadow()
