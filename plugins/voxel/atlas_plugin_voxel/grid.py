"""Trilinear interpolation of dense voxel grids [C, X, Y, Z] spanning the scene box.

Grid vertices sit on the box (``align_corners=True`` in ``grid_sample`` terms): vertex
``(0, 0, 0)`` is the box's low corner and ``(X-1, Y-1, Z-1)`` its high corner, as in
DVGO (Sun et al. 2022, sec. 3). Points outside the box read as zero.

The lookup is a gather of the eight corner voxels, not ``grid_sample``: on a CPU its
forward is an ``embedding_bag`` with per-corner weights and its backward one 1-D
``index_add_`` per channel over corners sorted by voxel, which is several times faster
than ``grid_sample``'s 5-D backward (see ``benchmarks/bench_voxel.py``). The same ops run
on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Corners:
    """The eight voxels around each of N points and their trilinear weights.

    When ``order`` is set, rows are sorted by voxel (point ``order[i]`` is row ``i``)
    so that gathers and gradient scatters walk memory in order; ``inverse`` maps back.
    """

    index: Tensor  # [N, 8] flat voxel index into X*Y*Z
    weights: Tensor  # [N, 8], zero for points outside the box
    inside: Tensor  # [N] bool, in the points' own order
    shape: tuple[int, int, int]  # (X, Y, Z)
    order: Tensor | None = None  # [N] point of each row, when sorted by voxel
    inverse: Tensor | None = None  # [N] row of each point, when sorted by voxel

    @property
    def num_voxels(self) -> int:
        """X * Y * Z."""
        x, y, z = self.shape
        return x * y * z


def corners(
    positions: Tensor,
    low: Tensor,
    high: Tensor,
    shape: tuple[int, int, int],
    sort: bool = False,
) -> Corners:
    """Corner voxels and weights of world ``positions`` [N, 3] in a grid over ``[low, high]``.

    ``sort`` orders the rows by voxel, which pays off when gradients are scattered back.
    """
    device, dtype = positions.device, positions.dtype
    dims = torch.tensor(shape, device=device, dtype=dtype)
    x = (positions - low) / (high - low) * (dims - 1)  # voxel coordinates
    inside = ((x >= 0) & (x <= dims - 1)).all(dim=-1)
    cell = torch.minimum(x.floor().clamp_min(0), (dims - 2).clamp_min(0))
    frac = (x - cell).clamp(0.0, 1.0) * inside[:, None]  # outside: weight on vertex 0 only
    cell = cell.long()
    _, ny, nz = shape
    base = (cell[:, 0] * ny + cell[:, 1]) * nz + cell[:, 2]
    order = inverse = None
    in_order = inside
    if sort:
        order = torch.argsort(base)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=device)
        base, frac, in_order = base[order], frac[order], inside[order]
    k = torch.arange(8, device=device)
    offsets = (((k >> 2) & 1) * ny + ((k >> 1) & 1)) * nz + (k & 1)
    index = base[:, None] + offsets  # [N, 8], corner k has bits (x, y, z) of k
    fx, fy, fz = frac.unbind(dim=-1)
    wx = torch.stack([1 - fx, fx], dim=-1) * in_order[:, None]
    wy = torch.stack([1 - fy, fy], dim=-1)
    wz = torch.stack([1 - fz, fz], dim=-1)
    weights = ((wx[:, :, None] * wy[:, None, :]).reshape(-1, 4, 1) * wz[:, None, :]).reshape(-1, 8)
    return Corners(index, weights, inside, shape, order, inverse)


class _Interpolate(torch.autograd.Function):
    """Weighted gather of corner voxels, with a scatter in voxel order for the gradient."""

    @staticmethod
    def forward(ctx, grid: Tensor, at: Corners) -> Tensor:  # noqa: ANN001
        channels = grid.shape[0]
        flat = grid.reshape(channels, -1)
        ctx.at, ctx.grid_shape = at, grid.shape
        parts = [
            F.embedding_bag(at.index, flat[c, :, None], per_sample_weights=at.weights, mode="sum")
            for c in range(channels)
        ]
        out = torch.cat(parts, dim=1)
        return out if at.inverse is None else out.index_select(0, at.inverse)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        at: Corners = ctx.at
        channels = ctx.grid_shape[0]
        if at.order is not None:
            grad = grad.index_select(0, at.order)
        per_channel = grad.t().contiguous()  # [C, N]
        index = at.index.reshape(-1)
        out = grad.new_zeros(channels, at.num_voxels)
        scaled = torch.empty_like(at.weights)  # reused: one buffer for every channel
        for c in range(channels):
            torch.mul(at.weights, per_channel[c, :, None], out=scaled)
            out[c].index_add_(0, index, scaled.view(-1))
        return out.view(ctx.grid_shape), None


def interpolate(grid: Tensor, at: Corners) -> Tensor:
    """Values [N, C] of ``grid`` [C, X, Y, Z] at the points ``at`` describes (0 outside)."""
    if tuple(grid.shape[1:]) != at.shape:
        raise ValueError(f"grid of shape {tuple(grid.shape)} does not match corners {at.shape}")
    return _Interpolate.apply(grid, at)


def trilinear(grid: Tensor, positions: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Values [N, C] of ``grid`` [C, X, Y, Z] over box ``[low, high]`` at ``positions`` [N, 3]."""
    sort = grid.requires_grad and torch.is_grad_enabled()
    return interpolate(grid, corners(positions, low, high, tuple(grid.shape[1:]), sort=sort))


def resample(grid: Tensor, resolution: tuple[int, int, int]) -> Tensor:
    """``grid`` [C, X, Y, Z] trilinearly resampled to ``resolution``, same box (DVGO sec. 5)."""
    size = tuple(int(r) for r in resolution)
    return F.interpolate(grid[None], size=size, mode="trilinear", align_corners=True)[0]
