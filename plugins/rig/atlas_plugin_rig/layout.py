"""Where the rig points start: spread over the scene box under the run's seed."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Layout = Literal["grid", "random"]


def spacing(extent: tuple[float, float, float], count: int) -> float:
    """Edge of the cube each of ``count`` points gets when they share the box evenly."""
    return (math.prod(extent) / count) ** (1.0 / 3.0)


def grid_counts(extent: tuple[float, float, float], count: int) -> tuple[int, int, int]:
    """Cells per axis of a lattice over the box with at least ``count`` cells."""
    step = spacing(extent, count)
    counts = [max(1, math.ceil(e / step - 1e-6)) for e in extent]
    while math.prod(counts) < count:  # rounding left too few cells: grow the shortest
        counts[counts.index(min(counts))] += 1
    return counts[0], counts[1], counts[2]


def initial_points(
    low: Tensor, high: Tensor, count: int, layout: Layout, generator: torch.Generator
) -> Tensor:
    """``count`` positions [count, 3] in the box ``[low, high]``.

    ``grid``: a jittered lattice (one uniform point in each of ``count`` cells drawn
    from a lattice of about ``count`` cells), so no region is left bare; ``random``:
    uniform in the box.
    """
    extent = high - low
    if layout == "random":
        return low + extent * torch.rand(count, 3, generator=generator)
    counts = grid_counts(tuple(extent.tolist()), count)
    cells = torch.randperm(math.prod(counts), generator=generator)[:count]
    ny, nz = counts[1], counts[2]
    ijk = torch.stack([cells // (ny * nz), (cells // nz) % ny, cells % nz], dim=-1)
    jitter = torch.rand(count, 3, generator=generator)
    return low + (ijk + jitter) * (extent / torch.tensor(counts))
