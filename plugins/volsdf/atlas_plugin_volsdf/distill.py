"""Fitting a hash-encoded SDF to a dense SDF grid (the warm-up's surface).

A hash-encoded SDF that starts as a sphere learns only where the sphere's surface puts
density, so parts of the scene away from it never receive a gradient. The ``volsdf_hash``
field therefore starts from the surface a dense density grid finds in a few seconds
(``volsdf_grid``'s warm-up and conversion) and regresses its SDF onto that grid's, with an
L1 loss on distances clamped to a band around the surface (DeepSDF, Park et al. 2019,
eq. 4), before VolSDF training refines it at the hash grid's resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["fit_sdf", "surface_points"]

NEAR_FRACTION = 0.75  # of each batch drawn near the surface; the rest uniform in the box


def surface_points(
    sdf: Tensor,
    vertices: Tensor,
    band: float,
    count: int,
    spacing: float,
    generator: torch.Generator,
) -> Tensor:
    """``count`` points jittered by up to a vertex ``spacing`` around the grid ``vertices``
    [N, 3] whose ``sdf`` [N] lies within ``band`` of zero (uniform vertices if none)."""
    near = vertices[sdf.abs() < band]
    pool = near if len(near) else vertices
    picks = torch.randint(len(pool), (count,), generator=generator)
    jitter = (torch.rand(count, 3, generator=generator) - 0.5) * spacing
    return pool[picks] + jitter.to(pool)


def fit_sdf(
    student: Callable[[Tensor], Tensor],
    teacher: Callable[[Tensor], Tensor],
    parameters: list[dict],
    sampler: Callable[[torch.Generator], Tensor],
    steps: int,
    band: float,
) -> float:
    """Regress ``student(x)`` onto ``teacher(x)`` (both SDFs [N, 1]) for ``steps`` Adam steps
    over ``parameters`` (optimiser groups), with points from ``sampler``; the last loss.

    Distances are clamped to ``[-band, band]`` on both sides (DeepSDF's clamp), so the
    network spends its capacity on the surface and not on far distances.
    """
    optimiser = torch.optim.Adam(parameters, betas=(0.9, 0.99), eps=1e-15)
    generator = torch.Generator().manual_seed(0)
    loss = torch.zeros(())
    for _ in range(steps):
        points = sampler(generator)
        with torch.no_grad():
            target = teacher(points).clamp(-band, band)
        loss = (student(points).clamp(-band, band) - target).abs().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return loss.item()
