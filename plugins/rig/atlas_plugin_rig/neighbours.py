"""k-nearest-neighbour queries through a uniform bucket grid.

Point-NeRF (Xu et al. 2022, sec. 3.2) shades a sample from its k nearest neural points.
Here the points are sorted each call into the cells of a uniform grid over a box (points
outside the box go to its border cells), and a sample is compared only with the points
in the 3 x 3 x 3 cells around its own: the cost grows with samples x points per cell,
never with samples x points. Samples in one cell share that list of candidates, which
is gathered once per occupied cell. With cells about one point spacing wide, as the rig
field makes them, the k nearest points (k up to about 8) are nearly always among the
candidates; where points have crowded elsewhere, the nearest candidates stand in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

OFFSETS = tuple(itertools.product((-1, 0, 1), repeat=3))
"""The 27 cells around (and including) a sample's cell."""

FAR = float("inf")
"""Coordinate of padding candidates: farther from any sample than every real point."""

CHUNK = 1 << 21
"""Candidate entries handled at once (samples are split into chunks to fit)."""


@dataclass(frozen=True)
class Neighbours:
    """``k`` points per sample, in no particular order; ``valid`` is False where a sample's
    27 cells held fewer than ``k`` points."""

    index: Tensor  # [S, k] long, point indices (0 where not valid)
    valid: Tensor  # [S, k] bool


class BucketGrid:
    """Points sorted by their cell of a ``dims`` grid over ``[low, high]``.

    The grid has a border of empty cells, so the 27 cells around any sample's cell exist;
    ``order`` lists the points cell by cell, ``starts`` and ``counts`` say where each
    cell's run begins and how long it is.
    """

    def __init__(self, points: Tensor, low: Tensor, high: Tensor, dims: tuple[int, int, int]):
        device = points.device
        self.points, self.low = points, low
        self.dims = torch.tensor(dims, device=device)
        self.size = (high - low) / self.dims
        padded = [d + 2 for d in dims]
        self.strides = torch.tensor([padded[1] * padded[2], padded[2], 1], device=device)
        self.offsets = (torch.tensor(OFFSETS, device=device) * self.strides).sum(-1)  # [27]
        cells = self.cell_of(points)
        self.order = torch.argsort(cells)
        self.counts = torch.bincount(cells, minlength=padded[0] * padded[1] * padded[2])
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def cell_of(self, positions: Tensor) -> Tensor:
        """Flat index [N] of each position's cell in the padded grid (clamped to the box)."""
        unit = torch.floor((positions - self.low) / self.size).clamp(-1, 1 << 20).long()
        ijk = torch.minimum(unit.clamp_min(0), self.dims - 1) + 1
        return (ijk * self.strides).sum(-1)

    def candidates(self, cells: Tensor) -> tuple[Tensor, Tensor]:
        """The points in the 27 cells around each of ``cells`` [U], padded to the longest
        list: indices [U, W] (-1 for padding) and coordinates [U, 3, W] (``FAR``)."""
        device, count = cells.device, len(cells)
        around = (cells[:, None] + self.offsets).view(-1)  # [U * 27]
        counts = self.counts.index_select(0, around)
        pair = torch.repeat_interleave(counts)  # one entry per (cell, neighbour, point)
        rank = torch.arange(len(pair), device=device)
        rank -= (torch.cumsum(counts, 0) - counts).index_select(0, pair)
        first = self.starts.index_select(0, around).index_select(0, pair)
        point = self.order.index_select(0, first + rank)
        owner = torch.div(pair, len(OFFSETS), rounding_mode="floor")
        per_cell = counts.view(count, -1).sum(-1)
        column = torch.arange(len(pair), device=device)
        column -= (torch.cumsum(per_cell, 0) - per_cell).index_select(0, owner)
        width = int(per_cell.max()) if count else 0
        slot = owner * width + column
        index = torch.full((count * width,), -1, dtype=torch.long, device=device)
        index.index_copy_(0, slot, point)
        coords = self.points.new_full((count * width, 3), FAR)
        coords.index_copy_(0, slot, self.points.index_select(0, point))
        return index.view(count, width), coords.view(count, width, 3).transpose(1, 2).contiguous()

    @torch.no_grad()
    def query(self, positions: Tensor, k: int) -> Neighbours:
        """The ``k`` nearest points to each sample among the 27 cells around it."""
        count, device = len(positions), positions.device
        if not count:
            empty = torch.zeros(0, k, dtype=torch.long, device=device)
            return Neighbours(empty, empty.bool())
        cells, inverse = torch.unique(self.cell_of(positions), return_inverse=True)
        index, coords = self.candidates(cells)
        if index.shape[1] < k:  # fewer candidates than neighbours asked for: pad
            index = F.pad(index, (0, k - index.shape[1]), value=-1)
            coords = F.pad(coords, (0, k - coords.shape[2]), value=FAR)
        width = index.shape[1]
        flat = coords.view(len(cells), 3 * width)
        nearest = torch.empty(count, k, dtype=torch.long, device=device)
        valid = torch.empty(count, k, dtype=torch.bool, device=device)
        chunk = max(1, CHUNK // width)
        for start in range(0, count, chunk):
            part = slice(start, start + chunk)
            rows = inverse[part]
            squared = squared_distances(flat.index_select(0, rows), positions[part])
            distance, slots = torch.topk(squared, k, dim=1, largest=False, sorted=False)
            nearest[part] = index.index_select(0, rows).gather(1, slots)
            valid[part] = torch.isfinite(distance)
        return Neighbours(torch.where(valid, nearest, 0), valid)


def squared_distances(coords: Tensor, positions: Tensor) -> Tensor:
    """Squared distances [S, W] from positions [S, 3] to candidates [S, 3 * W] (x, y, z
    rows of W each)."""
    rows = coords.view(len(coords), 3, -1)
    total = None
    for axis in range(3):
        delta = rows[:, axis] - positions[:, axis : axis + 1]
        total = delta * delta if total is None else total.addcmul_(delta, delta)
    return total
