"""Ray-surface intersection with an SDF: sphere tracing, bisection, secant (no gradients).

Sphere tracing: Hart 1996; bisection and secant refine the first sign change found by a
uniform march (the root finding of IDR, Yariv et al. 2020, sec. 3.1, and DVR's secant).
Every method also returns, per ray, the distance where the SDF was smallest: rays that
miss use that point for the silhouette terms (IDR eq. 7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

SDF = Callable[[Tensor], Tensor]  # positions [M, 3] -> signed distances [M, 1]
EPS = 1e-3
REFINE = 10


@dataclass
class Hits:
    """Per-ray intersection: distance ``t`` [R, 1], ``hit`` [R] bool, ``t_min`` [R, 1]."""

    t: Tensor
    hit: Tensor
    t_min: Tensor


def evaluate(sdf: SDF, origins: Tensor, dirs: Tensor, t: Tensor) -> Tensor:
    """SDF at ``origins + t * dirs`` for t of shape [R, K]; returns [R, K]."""
    points = origins[:, None, :] + t[..., None] * dirs[:, None, :]
    return sdf(points.reshape(-1, 3)).reshape(t.shape)


def march(sdf: SDF, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, steps: int):
    """Uniform distances [R, S] in ``[near, far]`` and the SDF there."""
    u = torch.linspace(0.0, 1.0, steps, device=origins.device)
    t = near + (far - near) * u
    return t, evaluate(sdf, origins, dirs, t)


def first_crossing(t: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """First outside-to-inside sign change per ray: hit, t_lo, t_hi, f_lo, f_hi."""
    change = (values[:, :-1] > 0) & (values[:, 1:] <= 0)
    hit = change.any(dim=1)
    index = torch.where(hit, change.float().argmax(dim=1), torch.zeros_like(hit, dtype=torch.long))
    pick = index[:, None]
    t_lo, t_hi = t.gather(1, pick), t.gather(1, pick + 1)
    f_lo, f_hi = values.gather(1, pick), values.gather(1, pick + 1)
    return hit, t_lo, t_hi, f_lo, f_hi


def bisection(sdf: SDF, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
              steps: int) -> Hits:  # fmt: skip
    """Halve the bracket of the first sign change REFINE times."""
    t, values = march(sdf, origins, dirs, near, far, steps)
    hit, t_lo, t_hi, _, _ = first_crossing(t, values)
    for _ in range(REFINE):
        mid = 0.5 * (t_lo + t_hi)
        outside = evaluate(sdf, origins, dirs, mid) > 0
        t_lo, t_hi = torch.where(outside, mid, t_lo), torch.where(outside, t_hi, mid)
    return Hits(0.5 * (t_lo + t_hi), hit, closest(t, values))


def secant(sdf: SDF, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
           steps: int) -> Hits:  # fmt: skip
    """Regula falsi on the bracket of the first sign change (DVR, Niemeyer et al. 2020)."""
    t, values = march(sdf, origins, dirs, near, far, steps)
    hit, t_lo, t_hi, f_lo, f_hi = first_crossing(t, values)
    guess = t_lo
    for _ in range(REFINE):
        guess = t_lo - f_lo * (t_hi - t_lo) / (f_hi - f_lo).clamp(max=-1e-9)
        value = evaluate(sdf, origins, dirs, guess)
        outside = value > 0
        t_lo, f_lo = torch.where(outside, guess, t_lo), torch.where(outside, value, f_lo)
        t_hi, f_hi = torch.where(outside, t_hi, guess), torch.where(outside, f_hi, value)
    return Hits(guess, hit, closest(t, values))


def sphere_trace(sdf: SDF, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
                 steps: int) -> Hits:  # fmt: skip
    """Step by the SDF until it is below EPS (Hart 1996); a march supplies ``t_min``."""
    t = near.clone()
    value = evaluate(sdf, origins, dirs, t)
    for _ in range(steps):
        active = (value > EPS) & (t < far)
        if not bool(active.any()):
            break
        t = torch.where(active, t + value, t)
        value = evaluate(sdf, origins, dirs, t)
    hit = ((value <= EPS) & (t <= far)).squeeze(1)
    grid, values = march(sdf, origins, dirs, near, far, max(steps // 2, 2))
    return Hits(t.clamp(max=far), hit, closest(grid, values))


def closest(t: Tensor, values: Tensor) -> Tensor:
    """The distance [R, 1] of the smallest sampled SDF along each ray."""
    return t.gather(1, values.argmin(dim=1, keepdim=True))


METHODS = {"sphere": sphere_trace, "bisection": bisection, "secant": secant}


@torch.no_grad()
def intersect(method: str, sdf: SDF, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
              steps: int) -> Hits:  # fmt: skip
    """Intersect rays with the SDF's zero level set by ``method``."""
    return METHODS[method](sdf, origins, dirs, near, far, steps)
