"""Multiresolution hash encoding in plain PyTorch (Mueller et al. 2022, Instant-NGP).

Mueller, Evans, Schied, Keller, "Instant Neural Graphics Primitives with a Multiresolution
Hash Encoding", SIGGRAPH 2022, sec. 3. Each of L levels is a grid of resolution N_l
(eq. 2-3: geometric growth from ``base_resolution`` to ``finest_resolution``) whose
vertices own a feature vector of size F. Coarse levels with at most ``2**log2_table``
vertices index them 1:1; finer levels share ``2**log2_table`` rows through the spatial
hash of eq. 4. A point's features are the d-linear interpolation of its cell's 2^d
corner rows, concatenated over levels: [N, L * F]. All levels live in one parameter:
the hashed levels first, each at a multiple of ``2**log2_table`` (so a level's offset
is or-ed into its hash), then the dense levels.

On CPU the encoding runs by default as one fused C++ pass per direction (``fused.py``,
``csrc/hash_encoding.cpp``, built on first use); the code below is the reference and
the fallback (``kernel="torch"``, CUDA tensors, or no compiler). In it, the lookup and
its gradient are one custom autograd function, vectorised over points,
levels and corners at once, with no Python loop over points. Points go in chunks so the
temporaries stay in cache, and within a chunk the rows are read level by level, so one
level's part of the table stays in cache too. On CPU a row of two features moves as one
complex64 number, several times faster than a row of two floats. Interpolation is one
lerp per axis. The corner rows and cell positions of the forward pass are kept for the
backward pass, which is one ``scatter_add_`` of the weighted output gradient into the
table per chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from atlas_core.api import Encoding, kernel_choice, level_weights, use_native
from atlas_plugin_ngp import fused

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

# Mueller et al. 2022, eq. 4: pi_1 = 1, pi_2 = 2654435761, pi_3 = 805459861.
PRIMES = (1, 2654435761, 805459861)
INIT_SCALE = 1e-4  # sec. 4: table entries start uniform in [-1e-4, 1e-4]
CHUNK_CPU = 1 << 14  # points per chunk on CPU: [levels, corners, points] fits in cache
CHUNK_GPU = 1 << 19  # on GPUs: few, large kernels
KERNELS = ("auto", "cpp", "torch")
KERNEL_ENV = "ATLAS_NGP_KERNEL"  # overrides kernel="auto" (e.g. torch, to force the reference)
Kernel = Literal["auto", "cpp", "torch"]


def level_resolutions(levels: int, base: int, finest: int) -> list[int]:
    """Grid resolution N_l of each level (Mueller et al. 2022, eq. 2-3)."""
    if levels == 1:
        return [base]
    growth = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
    return [int(math.floor(base * growth**level + 1e-6)) for level in range(levels)]


@dataclass
class LevelGroup:
    """Consecutive levels indexed the same way (densely or by hash), looked up together."""

    levels: slice  # the group's levels in the output
    hashed: bool
    scale: Tensor  # [count, 1, 1] float: N_l
    top: Tensor  # [count, 1, 1] long: N_l - 1, the last cell along each axis
    strides: Tensor  # [count, d, 1, 1] long: dense strides, or the primes of eq. 4
    offsets: Tensor  # [count, 1, 1] long: first table row of each level
    mask: int  # 2**log2_table - 1

    def corners(self, xt: Tensor, lanes: int) -> tuple[Tensor, Tensor]:
        """Table rows [count, 2^d, n] of the cell corners of points ``xt`` [d, n], and
        the points' positions in their cells [count, d, n * lanes], each repeated
        ``lanes`` times (one per feature). Corner ``c`` is offset by ``(c >> k) & 1``
        along axis ``k``.
        """
        pos = xt * self.scale  # [count, d, n]
        cell = torch.minimum(pos.long(), self.top)
        frac = pos.sub_(cell)
        low = (cell * self.strides[..., 0]).unsqueeze(2)  # [count, d, 1, n]
        pairs = torch.cat([low, low + self.strides], dim=2)  # [count, d, 2, n]
        if self.hashed:  # eq. 4: xor of coordinate * prime, modulo the table size
            pairs.bitwise_and_(self.mask)
            pairs[:, -1].bitwise_or_(self.offsets)  # offsets are multiples of the size
            rows = corner_product(pairs, torch.bitwise_xor)
        else:
            pairs[:, -1].add_(self.offsets)
            rows = corner_product(pairs, torch.add)
        return rows, repeat_lanes(frac, lanes)

    def slopes(self, xt: Tensor) -> Tensor:
        """d(weight of each corner)/d(x_k) [count, d, 2^d, n] (corner rows stay put)."""
        pos = xt * self.scale
        frac = pos - torch.minimum(pos.floor(), self.scale - 1)
        pairs = torch.stack([1.0 - frac, frac], dim=2)  # [count, d, 2, n]
        sign = torch.tensor([-1.0, 1.0], dtype=xt.dtype, device=xt.device)[:, None]
        slopes = []
        for axis in range(xt.shape[0]):
            varied = pairs.clone()
            varied[:, axis] = sign * self.scale
            slopes.append(corner_product(varied, torch.mul))
        return torch.stack(slopes, dim=1)


def corner_product(pairs: Tensor, op: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Combine per-axis pairs [count, d, 2, n] over all 2^d corners: [count, 2^d, n]."""
    out = pairs[:, 0]
    for axis in range(1, pairs.shape[1]):
        out = op(pairs[:, axis, :, None], out[:, None]).flatten(1, 2)
    return out


def repeat_lanes(frac: Tensor, lanes: int) -> Tensor:
    """[count, d, n] -> [count, d, n * lanes], each value repeated ``lanes`` times."""
    if lanes == 1:
        return frac
    if lanes == 2:  # (f, f) pairs from one fast kernel
        return torch.view_as_real(torch.complex(frac, frac)).flatten(-2)
    return frac.unsqueeze(-1).expand(*frac.shape, lanes).flatten(-2)


def spread(grad: Tensor, frac: Tensor) -> Tensor:
    """``grad`` [count, m] times each corner's weight at [count, d, m]: [count, 2^d, m]."""
    out = grad[:, None]
    for axis in reversed(range(frac.shape[1])):  # x last: the lowest corner bit
        f = frac[:, axis]
        out = (out[:, :, None] * torch.stack([1.0 - f, f], dim=1)[:, None]).flatten(1, 2)
    return out


def interpolate(values: Tensor, frac: Tensor) -> Tensor:
    """d-linear interpolation of corner values [count, 2^d, m] at [count, d, m]: [count, m].

    One lerp per axis, halving the corners each time (x first: the lowest corner bit).
    """
    count, _, m = values.shape
    for axis in range(frac.shape[1]):
        pairs = values.view(count, -1, 2, m)
        values = torch.lerp(pairs[:, :, 0], pairs[:, :, 1], frac[:, axis, None])
    return values[:, 0]


Corners = list[tuple[Tensor, Tensor]]  # (rows, positions in cells) per chunk and group


class _HashLookup(torch.autograd.Function):
    """Interpolated table lookup with a scatter-add backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, table: Tensor, groups: list[LevelGroup]) -> Tensor:
        """Features [N, L, F] of points ``x`` [d, N] in [0, 1]^d."""
        ctx.save_for_backward(x, table)
        ctx.groups = groups
        # finding the corners costs as much as the gather: keep them for the backward pass
        ctx.corners = [] if ctx.needs_input_grad[1] else None
        return lookup(x, table, groups, ctx.corners)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        """Gradients for the points (when asked) and for the table."""
        x, table = ctx.saved_tensors
        grad_x = grad_table = None
        if ctx.needs_input_grad[1]:
            grad_table = table_gradient(x, table, ctx.groups, grad, ctx.corners)
        if ctx.needs_input_grad[0]:
            grad_x = point_gradient(x, table, ctx.groups, grad)
        ctx.corners = None
        return grad_x, grad_table, None


def chunks(x: Tensor, groups: list[LevelGroup]) -> Iterator[tuple[slice, LevelGroup, Tensor]]:
    """(points, level group, coordinates [d, n]) for every chunk of points and group."""
    size = CHUNK_CPU if x.device.type == "cpu" else CHUNK_GPU
    for start in range(0, x.shape[1], size):
        points = slice(start, min(start + size, x.shape[1]))
        for group in groups:
            yield points, group, x[:, points]


def _pairs_as_complex(table: Tensor) -> bool:
    """Move rows of two float32 features as one complex64 (fast on CPU)."""
    return table.device.type == "cpu" and table.shape[1] == 2 and table.dtype == torch.float32


def _gather(table: Tensor, index: Tensor) -> Tensor:
    """Rows [count, 2^d, n * F] of the table for an index [count, 2^d, n]."""
    if _pairs_as_complex(table):
        rows = torch.view_as_complex(table).index_select(0, index.view(-1))
        return torch.view_as_real(rows).view(*index.shape[:2], -1)
    return table.index_select(0, index.view(-1)).view(*index.shape[:2], -1)


def _scatter_add(target: Tensor, index: Tensor, values: Tensor) -> None:
    """Add rows ``values`` [M, F] into ``target`` [rows, F] at rows ``index`` [M]."""
    if _pairs_as_complex(target):
        torch.view_as_complex(target).scatter_add_(0, index, torch.view_as_complex(values))
        return
    features = target.shape[1]
    lanes = torch.arange(features, device=index.device)
    flat_index = (index[:, None] * features + lanes).view(-1)
    target.view(-1).scatter_add_(0, flat_index, values.reshape(-1))


def lookup(x: Tensor, table: Tensor, groups: list[LevelGroup], keep: Corners | None) -> Tensor:
    """Interpolated features [N, L, F] of points [d, N]; appends the corners to ``keep``."""
    features = table.shape[1]
    levels = sum(g.levels.stop - g.levels.start for g in groups)
    out = x.new_empty(x.shape[1], levels, features)
    for points, group, xt in chunks(x, groups):
        index, frac = group.corners(xt, features)  # [count, 2^d, n], [count, d, n * F]
        mixed = interpolate(_gather(table, index), frac)  # [count, n * F]
        out[points, group.levels] = mixed.view(-1, xt.shape[1], features).transpose(0, 1)
        if keep is not None:
            keep.append((index, frac))
    return out


def table_gradient(
    x: Tensor, table: Tensor, groups: list[LevelGroup], grad: Tensor, kept: Corners | None
) -> Tensor:
    """Scatter the output gradient [N, L, F] into a table gradient."""
    features = table.shape[1]
    grad_table = torch.zeros_like(table)
    for step, (points, group, xt) in enumerate(chunks(x, groups)):
        index, frac = kept[step] if kept else group.corners(xt, features)
        g = grad[points, group.levels].transpose(0, 1).reshape(-1, xt.shape[1] * features)
        contribution = spread(g, frac)  # [count, 2^d, n * F]
        _scatter_add(grad_table, index.view(-1), contribution.view(-1, features))
    return grad_table


def point_gradient(x: Tensor, table: Tensor, groups: list[LevelGroup], grad: Tensor) -> Tensor:
    """d(loss)/d(points) [d, N], through the interpolation weights."""
    features = table.shape[1]
    out = torch.zeros_like(x)
    for points, group, xt in chunks(x, groups):
        index, _ = group.corners(xt, 1)
        values = _gather(table, index).view(*index.shape, features)
        g = grad[points, group.levels].transpose(0, 1)[:, None]  # [count, 1, n, F]
        along = (values * g).sum(-1)  # [count, 2^d, n]
        slopes = group.slopes(xt)  # [count, d, 2^d, n]
        out[:, points] += (slopes * along[:, None]).sum((0, 2))
    return out


class HashEncoding(Encoding):
    """Multiresolution hash encoding (Mueller et al. 2022): [N, d] -> [N, levels * features].

    Built with a context (as the run's ``encoding``), it maps world positions to the unit
    cube by the scene box; otherwise it expects points in [0, 1]^d. Inputs are clamped to
    the unit cube. ``levels`` grids from ``base_resolution`` to ``finest_resolution``,
    ``features`` per vertex, ``2**log2_table`` rows per hashed level. ``kernel``: ``auto``
    uses the fused C++ kernel on CPU when it builds (else the reference, with a warning),
    ``cpp`` requires it, ``torch`` forces the pure-PyTorch reference; with ``auto`` the
    environment variable ``ATLAS_NGP_KERNEL`` may choose instead.
    """

    def __init__(
        self,
        in_dim: int = 3,
        levels: int = 16,
        features: int = 2,
        log2_table: int = 17,
        base_resolution: int = 16,
        finest_resolution: int = 1024,
        kernel: Kernel = "auto",
        context: BuildContext | None = None,
    ):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        if not 1 <= in_dim <= len(PRIMES):
            raise ValueError(f"in_dim must be 1..{len(PRIMES)}, got {in_dim}")
        if levels < 1 or features < 1:
            raise ValueError("levels and features must be >= 1")
        if not 4 <= log2_table <= 30:
            raise ValueError("log2_table must be in 4..30")
        if not 1 <= base_resolution <= finest_resolution:
            raise ValueError("need 1 <= base_resolution <= finest_resolution")
        self.in_dim, self.levels, self.features = in_dim, levels, features
        self.out_dim = levels * features
        self.table_size = 1 << log2_table
        self.resolutions = level_resolutions(levels, base_resolution, finest_resolution)
        self.hashed = [(r + 1) ** in_dim > self.table_size for r in self.resolutions]
        self.sizes = [self.table_size if h else (r + 1) ** in_dim
                      for r, h in zip(self.resolutions, self.hashed, strict=True)]  # fmt: skip
        dense = self.hashed.index(True) if any(self.hashed) else levels
        # hashed levels first, so each starts at a multiple of the table size
        order = list(range(dense, levels)) + list(range(dense))
        self.offsets = [0] * levels
        row = 0
        for level in order:
            self.offsets[level] = row
            row += self.sizes[level]
        self.table = nn.Parameter(torch.empty(row, features))
        nn.init.uniform_(self.table, -INIT_SCALE, INIT_SCALE)
        self._groups: list[tuple[str, slice, bool]] = []
        self._add_group("dense", slice(0, dense), hashed=False)
        self._add_group("hashed", slice(dense, levels), hashed=True)
        self._set_box(context)
        scale = torch.tensor(self.resolutions, dtype=torch.float32)
        self.register_buffer("level_scale", scale, persistent=False)
        self.kernel = kernel
        if self.chosen_kernel() != "torch" and not torch.cuda.is_available():
            fused.extension()  # build now, before any training clock starts (cached)
        self.last_kernel = ""  # "cpp" or "torch": the path the last lookup took
        strides = [list(PRIMES[:in_dim]) if hashed else [(r + 1) ** k for k in range(in_dim)]
                   for r, hashed in zip(self.resolutions, self.hashed, strict=True)]  # fmt: skip
        # per level: N_l, first row, strides (dense or eq. 4's primes), hashed (for fused.py)
        self._levels = (
            torch.tensor(self.resolutions),
            torch.tensor(self.offsets),
            torch.tensor(strides),
            torch.tensor(self.hashed),
        )

    def _add_group(self, name: str, levels: slice, hashed: bool) -> None:
        """Register the buffers of one level group (if it has levels)."""
        resolutions = self.resolutions[levels]
        if not resolutions:
            return
        if hashed:
            strides = [list(PRIMES[: self.in_dim]) for _ in resolutions]
        else:
            strides = [[(r + 1) ** k for k in range(self.in_dim)] for r in resolutions]
        count = len(resolutions)
        scale = torch.tensor(resolutions, dtype=torch.float32).view(count, 1, 1)
        self.register_buffer(f"{name}_scale", scale, persistent=False)
        self.register_buffer(f"{name}_top", (scale - 1).long(), persistent=False)
        strides_t = torch.tensor(strides).view(count, self.in_dim, 1, 1)
        self.register_buffer(f"{name}_strides", strides_t, persistent=False)
        offsets = torch.tensor(self.offsets[levels]).view(count, 1, 1)
        self.register_buffer(f"{name}_offsets", offsets, persistent=False)
        self._groups.append((name, levels, hashed))

    def _set_box(self, context: BuildContext | None) -> None:
        """Remember the scene box that maps world positions to the unit cube."""
        self.normalise = context is not None and self.in_dim == 3
        bounds = context.scene.bounds if self.normalise else (0.0,) * 3 + (1.0,) * 3
        low = torch.tensor(bounds[:3], dtype=torch.float32)
        size = torch.tensor(bounds[3:], dtype=torch.float32) - low
        self.register_buffer("box_low", low, persistent=False)
        self.register_buffer("box_size", size, persistent=False)

    def groups(self) -> list[LevelGroup]:
        """The level groups, with their buffers on the table's device."""
        return [
            LevelGroup(
                levels=levels,
                hashed=hashed,
                scale=getattr(self, f"{name}_scale"),
                top=getattr(self, f"{name}_top"),
                strides=getattr(self, f"{name}_strides"),
                offsets=getattr(self, f"{name}_offsets"),
                mask=self.table_size - 1,
            )
            for name, levels, hashed in self._groups
        ]

    def chosen_kernel(self) -> str:
        """``auto``, ``cpp`` or ``torch``: the option, or ``ATLAS_NGP_KERNEL`` under auto."""
        return kernel_choice(self.kernel, KERNEL_ENV)

    def use_fused(self, points: Tensor) -> bool:
        """True when this lookup runs the fused C++ kernel."""
        supported = fused.supports(points, self.table)
        return use_native(self.kernel, supported, "ngp", fused.extension, KERNEL_ENV)

    def encode_unit(self, x: Tensor) -> Tensor:
        """Encode points in [0, 1]^d (clamped) to [N, levels * features]."""
        points = x.clamp(0.0, 1.0).to(self.table.dtype).t().contiguous()
        if self.use_fused(points):
            self.last_kernel = "cpp"
            features = fused.fused_lookup(points, self.table, self._levels, self.table_size)
            return features.view(x.shape[0], self.out_dim)
        self.last_kernel = "torch"
        if torch.is_grad_enabled() and (points.requires_grad or self.table.requires_grad):
            features = _HashLookup.apply(points, self.table, self.groups())  # [N, L, F]
        else:  # inference: nothing to keep for a backward pass
            features = lookup(points, self.table, self.groups(), keep=None)
        return features.view(x.shape[0], self.out_dim)

    def encode_footprints(self, x: Tensor, stds: Tensor) -> Tensor:
        """Anti-aliased features [N, levels * features] of ``K`` points per frustum (Zip-NeRF,
        Barron et al. 2023, sec. 2): points ``x`` [N, K, d] in the unit cube, their
        Gaussians' standard deviations ``stds`` [N, K] in unit-cube lengths; each level's
        features are scaled by ``level_weights`` and averaged over the points."""
        count, points = stds.shape
        flat = self.encode_unit(x.reshape(-1, self.in_dim))
        features = flat.view(count, points, self.levels, self.features)
        weights = level_weights(stds, self.level_scale.to(stds.dtype))  # [N, K, L]
        return (features * weights[..., None]).mean(dim=1).view(count, self.out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Encode [N, in_dim] to [N, levels * features]."""
        if self.normalise:
            x = (x - self.box_low) / self.box_size
        return self.encode_unit(x)
