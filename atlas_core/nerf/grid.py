"""Trilinear interpolation of dense voxel grids stored channels-last, as [X*Y*Z, C].

Grid vertices sit on the box (``align_corners=True`` in ``grid_sample`` terms): vertex
``(0, 0, 0)`` is the box's low corner and ``(X-1, Y-1, Z-1)`` its high corner, as in
DVGO (Sun et al. 2022, sec. 3). Points outside the box read as zero.

The lookup is one ``embedding_bag`` over the eight corner rows with trilinear weights:
a gather of contiguous rows. With ``sparse=True`` its gradient is a sparse tensor that
holds only the rows a batch touched, so neither the backward pass nor the optimizer
(masked Adam, ``atlas_core.engine.optimizers``) walks the whole grid: the step costs
what the batch touches, not what the grid holds. A grid that is not a leaf (a smoothed
copy) gets a dense gradient, scattered back with ``index_add_`` (:func:`weighted_rows`).
The same ops run on CUDA.

:func:`sample` is the lookup fields call: on a CPU it runs one fused C++ pass each way
(``csrc/grid_ops.cpp``: the corners found per point, no [N, 8] index or weight tensors;
the gradient handed over already coalesced, touched rows in increasing order), and
falls back to :func:`corners` and :func:`interpolate`, the reference, elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from atlas_core.nerf import native

__all__ = [
    "Corners",
    "Shape",
    "axis_weights",
    "blur",
    "check_kernel",
    "check_schedule",
    "corner_products",
    "corners",
    "fit_saved_grids",
    "from_volume",
    "gradient",
    "grid_shape",
    "interpolate",
    "resample",
    "sample",
    "schedule",
    "to_volume",
    "trilinear",
    "vertices",
    "weighted_rows",
]

Shape = tuple[int, int, int]


@dataclass
class Corners:
    """The eight voxels around each of N points and their trilinear weights."""

    index: Tensor  # [N, 8] flat vertex index into X*Y*Z
    weights: Tensor  # [N, 8], zero for points outside the box
    inside: Tensor  # [N] bool
    shape: Shape  # (X, Y, Z)
    frac: Tensor | None = None  # [N, 3] position inside the cell, 0..1 per axis
    scale: Tensor | None = None  # [3] cells per world unit along each axis

    @property
    def num_voxels(self) -> int:
        """X * Y * Z."""
        x, y, z = self.shape
        return x * y * z


def corners(positions: Tensor, low: Tensor, high: Tensor, shape: Shape) -> Corners:
    """Corner vertices and weights of world ``positions`` [N, 3] in a grid over ``[low, high]``."""
    device, dtype = positions.device, positions.dtype
    dims = torch.tensor(shape, device=device, dtype=dtype)
    x = (positions - low.to(dtype)) / (high - low).to(dtype) * (dims - 1)  # vertex coordinates
    inside = ((x >= 0) & (x <= dims - 1)).all(dim=-1)
    cell = torch.minimum(x.floor().clamp_min(0), (dims - 2).clamp_min(0))
    frac = (x - cell).clamp(0.0, 1.0)
    cell = cell.long()
    _, ny, nz = shape
    base = (cell[:, 0] * ny + cell[:, 1]) * nz + cell[:, 2]
    k = torch.arange(8, device=device)
    offsets = (((k >> 2) & 1) * ny + ((k >> 1) & 1)) * nz + (k & 1)
    index = base[:, None] + offsets  # [N, 8], corner k has bits (x, y, z) of k
    weights = corner_products(*axis_weights(frac, inside))
    scale = (dims - 1) / (high - low).to(dtype)
    return Corners(index, weights, inside, shape, frac, scale)


def axis_weights(frac: Tensor, inside: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Linear weights [N, 2] of the low and high vertex along x, y and z (0 outside)."""
    fx, fy, fz = frac.unbind(dim=-1)
    wx = torch.stack([1 - fx, fx], dim=-1) * inside[:, None]
    return wx, torch.stack([1 - fy, fy], dim=-1), torch.stack([1 - fz, fz], dim=-1)


def corner_products(wx: Tensor, wy: Tensor, wz: Tensor) -> Tensor:
    """Per-corner products [N, 8] of per-axis weights [N, 2] (corner k has bits x, y, z)."""
    return ((wx[:, :, None] * wy[:, None, :]).reshape(-1, 4, 1) * wz[:, None, :]).reshape(-1, 8)


def interpolate(grid: Tensor, at: Corners, sparse: bool = False) -> Tensor:
    """Values [N, C] of ``grid`` [X*Y*Z, C] at the points ``at`` describes (0 outside).

    ``sparse``: the gradient reaching ``grid`` is a sparse tensor of the touched rows.
    """
    if grid.dim() != 2 or grid.shape[0] != at.num_voxels:
        raise ValueError(f"grid of shape {tuple(grid.shape)} does not match corners {at.shape}")
    return weighted_rows(grid, at.index, at.weights.to(grid.dtype), sparse)


def weighted_rows(grid: Tensor, index: Tensor, weights: Tensor, sparse: bool = False) -> Tensor:
    """``sum_k weights[n, k] * grid[index[n, k]]`` [N, C]: one ``embedding_bag``.

    A dense gradient for ``grid`` (a smoothed copy, not a leaf) is scattered back with
    ``index_add_``: ``embedding_bag``'s own dense backward sorts the indices and took 35%
    of a ``volsdf_grid`` step on a CPU; the scatter is 13x faster
    (``benchmarks/results/surfaces-2026-12-06.md``).
    """
    if sparse or not (torch.is_grad_enabled() and grid.requires_grad):
        return F.embedding_bag(index, grid, per_sample_weights=weights, mode="sum", sparse=sparse)
    return _DenseBag.apply(grid, index, weights)


class _DenseBag(torch.autograd.Function):
    """:func:`weighted_rows` with a scattered (``index_add_``) dense grid gradient."""

    @staticmethod
    def forward(ctx, grid, index, weights):  # noqa: ANN001, ANN205
        ctx.save_for_backward(grid, index, weights)
        return F.embedding_bag(index, grid, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        grid, index, weights = ctx.saved_tensors
        grad_grid = grad_weights = None
        if ctx.needs_input_grad[0]:
            rows = (weights[..., None] * grad[:, None, :]).reshape(-1, grid.shape[1])
            grad_grid = torch.zeros_like(grid).index_add_(0, index.reshape(-1), rows)
        if ctx.needs_input_grad[2]:
            grad_weights = (grid[index] * grad[:, None, :]).sum(dim=-1)
        return grad_grid, None, grad_weights


def check_kernel(kernel: str) -> None:
    """Raise ValueError unless ``kernel`` is ``auto``, ``cpp`` or ``torch``; build the
    C++ kernels now if this choice may use them (before any training clock starts)."""
    native.prepare(kernel)


def sample(
    grid: Tensor,
    positions: Tensor,
    low: Tensor,
    high: Tensor,
    shape: Shape,
    sparse: bool = False,
    kernel: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Values [N, C] of ``grid`` [X*Y*Z, C] at world ``positions`` [N, 3] (0 outside the
    box) and whether each point is inside [N]: :func:`corners` then :func:`interpolate`,
    or the fused C++ kernel (``kernel``: ``auto``, ``cpp`` or ``torch``; see
    ``atlas_core.nerf.native``). It runs when the tensors are on the CPU in one floating
    dtype, the positions need no gradient and the grid's is sparse (or not needed).
    """
    wants_grad = torch.is_grad_enabled() and grid.requires_grad
    supported = (
        native.cpu_floats(grid, positions)
        and grid.dim() == 2
        and not (torch.is_grad_enabled() and positions.requires_grad)
        and (sparse or not wants_grad)
    )
    if native.use_native(kernel, supported, "grid lookup"):
        dims = [int(n) for n in shape]
        if grid.shape[0] != dims[0] * dims[1] * dims[2]:
            raise ValueError(f"grid of shape {tuple(grid.shape)} does not match shape {shape}")
        if wants_grad:
            return _FusedLookup.apply(grid, positions.contiguous(), low, high, dims)
        values, inside = native.grid_ops().trilinear_forward(
            positions.contiguous(), grid, low, high, dims
        )
        return values, inside
    at = corners(positions, low, high, shape)
    return interpolate(grid, at, sparse=sparse), at.inside


_scratch: dict[tuple[int, torch.dtype], tuple[Tensor, Tensor]] = {}


def _scratch_for(rows: int, channels: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """A zeroed [rows, channels] buffer and row flags for the backward pass (kept: the
    kernel leaves them zeroed; one per channel count and dtype, the latest size)."""
    key = (channels, dtype)
    held = _scratch.get(key)
    if held is None or held[0].shape[0] != rows:
        held = (torch.zeros(rows, channels, dtype=dtype), torch.zeros(rows, dtype=torch.bool))
        _scratch[key] = held
    return held


class _FusedLookup(torch.autograd.Function):
    """The C++ trilinear lookup; its grid gradient is row-sparse and coalesced."""

    @staticmethod
    def forward(ctx, grid, positions, low, high, dims):  # noqa: ANN001, ANN205
        values, inside = native.grid_ops().trilinear_forward(positions, grid, low, high, dims)
        ctx.save_for_backward(positions, low, high)
        ctx.dims, ctx.grid_shape, ctx.dtype = dims, tuple(grid.shape), grid.dtype
        ctx.mark_non_differentiable(inside)
        return values, inside

    @staticmethod
    def backward(ctx, grad, _inside):  # noqa: ANN001, ANN205
        positions, low, high = ctx.saved_tensors
        scratch, flags = _scratch_for(*ctx.grid_shape, ctx.dtype)
        rows, values = native.grid_ops().trilinear_backward(
            positions, grad.to(ctx.dtype), low, high, ctx.dims, scratch, flags
        )
        grad_grid = torch.sparse_coo_tensor(
            rows[None], values, ctx.grid_shape, check_invariants=False, is_coalesced=True
        )
        return grad_grid, None, None, None, None


def gradient(grid: Tensor, at: Corners, sparse: bool = False) -> Tensor:
    """Spatial gradient [N, 3] of a one-channel ``grid`` [X*Y*Z, 1] (0 outside the box).

    The exact derivative of trilinear interpolation in world units: constant along the
    differentiated axis within a cell, linear along the others. It is linear in the grid
    values, so a loss on it (the eikonal term) trains the grid with first-order gradients.
    """
    if at.frac is None or at.scale is None:
        raise ValueError("corners without cell positions: build them with corners()")
    if grid.dim() != 2 or grid.shape[1] != 1:
        raise ValueError(f"gradient needs a one-channel grid, got shape {tuple(grid.shape)}")
    wx, wy, wz = axis_weights(at.frac, at.inside)
    one = at.inside.to(wx.dtype)
    slope = torch.stack([-one, one], dim=-1)  # d(1 - f, f)/df, zero outside
    parts = []
    derivatives = (slope, wy, wz), (wx, slope, wz), (wx, wy, slope)
    for axis, factors in enumerate(derivatives):
        weights = corner_products(*factors)
        bag = weighted_rows(grid, at.index, weights.to(grid.dtype), sparse)
        parts.append(bag * at.scale[axis])
    return torch.cat(parts, dim=-1)


def blur(grid: Tensor, shape: Shape, passes: int = 1) -> Tensor:
    """``grid`` [X*Y*Z, C] after ``passes`` binomial [1, 2, 1] / 4 filters along each axis.

    Edge vertices are repeated (Neumann boundary), so constants and, away from the box's
    faces, linear functions pass unchanged; each pass adds variance 1/2 (in vertex spacings
    squared) per axis. Elementwise only, so forward and backward cost a few passes over
    the grid and run on any device.
    """
    volume = grid.reshape(*shape, grid.shape[1])
    for _ in range(passes):
        for axis in range(3):
            n = shape[axis]
            if n < 3:
                continue
            edges = (volume.narrow(axis, 0, 1), volume, volume.narrow(axis, n - 1, 1))
            padded = torch.cat(edges, axis)
            neighbours = padded.narrow(axis, 0, n) + padded.narrow(axis, 2, n)
            volume = 0.5 * volume + 0.25 * neighbours
    return volume.reshape(grid.shape)


def check_schedule(initial: int, final: int, upscale_steps: tuple[int, ...]) -> None:
    """Raise ValueError unless ``initial`` grows to ``final`` at increasing steps >= 1."""
    if not 2 <= initial <= final:
        raise ValueError("need 2 <= initial_resolution <= resolution")
    if list(upscale_steps) != sorted(set(upscale_steps)) or any(s < 1 for s in upscale_steps):
        raise ValueError("upscale_steps must be increasing step numbers >= 1")
    if initial < final and not upscale_steps:
        raise ValueError("initial_resolution < resolution needs upscale_steps")


def fit_saved_grids(
    state_dict: dict[str, Tensor],
    prefix: str,
    current: dict[str, Tensor],
    install: Callable[[str, Tensor, Shape], None],
) -> None:
    """Resize grids to the shapes a checkpoint saved, so one from another growth stage loads.

    ``current`` maps each grid's name to its tensor now; ``install(name, values, shape)``
    puts an empty grid of the saved shape in its place (the checkpoint then fills it).
    The saved vertex shape is the state's ``dims``.
    """
    dims = state_dict.get(prefix + "dims")
    if dims is None:
        return
    for name, grid in current.items():
        saved = state_dict.get(prefix + name)
        if saved is None or saved.dim() != 2 or saved.shape[1] != grid.shape[1]:
            continue
        if saved.shape != grid.shape:
            fresh = torch.empty(saved.shape, dtype=grid.dtype, device=grid.device)
            install(name, fresh, tuple(dims.tolist()))


def grid_shape(extent: tuple[float, float, float], resolution: int) -> Shape:
    """Vertices per axis: ``resolution`` along the longest side, the same spacing elsewhere."""
    longest = max(extent)
    return tuple(max(2, round((resolution - 1) * e / longest) + 1) for e in extent)


def schedule(initial: int, final: int, count: int) -> list[int]:
    """Resolutions after 0..count upscales, growing the voxel count geometrically (DVGO)."""
    if count == 0:
        return [final]
    return [round(initial * (final / initial) ** (k / count)) for k in range(count + 1)]


def trilinear(grid: Tensor, shape: Shape, positions: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Values [N, C] of ``grid`` [X*Y*Z, C] over box ``[low, high]`` at ``positions`` [N, 3]."""
    return interpolate(grid, corners(positions, low, high, shape))


def to_volume(grid: Tensor, shape: Shape) -> Tensor:
    """``grid`` [X*Y*Z, C] as a [C, X, Y, Z] volume (a copy)."""
    return grid.t().reshape(grid.shape[1], *shape)


def from_volume(volume: Tensor) -> Tensor:
    """A [C, X, Y, Z] volume as a contiguous channels-last grid [X*Y*Z, C]."""
    return volume.reshape(volume.shape[0], -1).t().contiguous()


def resample(grid: Tensor, shape: Shape, new_shape: Shape) -> Tensor:
    """``grid`` [X*Y*Z, C] trilinearly resampled to ``new_shape``, same box (DVGO sec. 5)."""
    size = tuple(int(r) for r in new_shape)
    volume = to_volume(grid, shape)[None]
    return from_volume(F.interpolate(volume, size=size, mode="trilinear", align_corners=True)[0])


def vertices(low: Tensor, high: Tensor, shape: Shape) -> Tensor:
    """World positions [X*Y*Z, 3] of every grid vertex, in flat-index order."""
    spans = zip(low.tolist(), high.tolist(), shape, strict=True)
    axes = [torch.linspace(lo, hi, n, device=low.device, dtype=low.dtype) for lo, hi, n in spans]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
