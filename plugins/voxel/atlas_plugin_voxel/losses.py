"""Total-variation regularisers of the voxel grids (DVGO, Sun et al. 2022, sec. 5.3;
Plenoxels, Fridovich-Keil et al. 2022, eq. 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.losses import Loss
from atlas_core.rays import RayBundle
from atlas_plugin_voxel.field import VoxelField

if TYPE_CHECKING:
    from atlas_core.pipeline import BuildContext


def find_voxel_field(field: nn.Module) -> VoxelField:
    """The VoxelField in ``field`` or among the modules it wraps."""
    for module in field.modules():
        if isinstance(module, VoxelField):
            return module
    raise ValueError(
        f"the run's field is {type(field).__name__}, which holds no voxel grid; "
        "the TV losses need --set field=voxel"
    )


class _SampledTV(torch.autograd.Function):
    """Mean squared forward difference at voxels ``index`` [K] with neighbours ``steps``.

    A custom backward scatters into each channel with a 1-D ``index_add_``, much faster
    on a CPU than the generic advanced-indexing backward.
    """

    @staticmethod
    def forward(ctx, grid: Tensor, index: Tensor, steps: Tensor) -> Tensor:  # noqa: ANN001
        flat = grid.reshape(grid.shape[0], -1)
        corners = (index[:, None] + steps).view(-1)  # [K * 4]: voxel, +x, +y, +z
        values = flat.index_select(1, corners).view(grid.shape[0], -1, 4)
        diffs = values[:, :, 1:] - values[:, :, :1]  # [C, K, 3]
        ctx.save_for_backward(corners, diffs)
        ctx.grid_shape = grid.shape
        return diffs.square().sum(dim=-1).mean()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: ANN001
        corners, diffs = ctx.saved_tensors
        channels, count = diffs.shape[0], diffs.shape[1]
        pull = diffs * (2 * grad / (channels * count))  # d loss / d neighbour
        parts = torch.cat([-pull.sum(dim=-1, keepdim=True), pull], dim=-1).view(channels, -1)
        out = grad.new_zeros(channels, ctx.grid_shape[1:].numel())
        for c in range(channels):
            out[c].index_add_(0, corners, parts[c])
        return out.view(ctx.grid_shape), None, None


def total_variation(grid: Tensor, voxels: int = 0) -> Tensor:
    """Mean over voxels and channels of the squared forward differences along x, y and z.

    ``grid`` is [C, X, Y, Z]; the mean runs over the voxels that have all three forward
    neighbours. With ``voxels`` > 0 and a grid with more of them, it runs over that
    many random voxels instead: an unbiased estimate whose cost does not grow with the
    resolution.
    """
    _, nx, ny, nz = grid.shape
    if voxels <= 0 or voxels >= (nx - 1) * (ny - 1) * (nz - 1):
        dx = grid[:, 1:, :-1, :-1] - grid[:, :-1, :-1, :-1]
        dy = grid[:, :-1, 1:, :-1] - grid[:, :-1, :-1, :-1]
        dz = grid[:, :-1, :-1, 1:] - grid[:, :-1, :-1, :-1]
        return (dx.square() + dy.square() + dz.square()).mean()
    device = grid.device
    ix = torch.randint(nx - 1, (voxels,), device=device)
    iy = torch.randint(ny - 1, (voxels,), device=device)
    iz = torch.randint(nz - 1, (voxels,), device=device)
    index = (ix * ny + iy) * nz + iz
    steps = torch.tensor([0, ny * nz, nz, 1], device=device)
    return _SampledTV.apply(grid, index, steps)


class _GridTV(Loss):
    """TV of one grid of the run's VoxelField, estimated on ``voxels`` random voxels.

    Its gradient is a dense tensor the size of the grid, which costs as much as the
    rest of a small training step; so while training it flows every ``every``-th call
    only, scaled by ``every`` (the same expected gradient), and the other calls return
    the value without a graph.
    """

    grid = ""
    name = ""

    def __init__(self, context: BuildContext, voxels: int = 65536, every: int = 4):
        super().__init__()
        if every < 1:
            raise ValueError("every must be >= 1")
        # a plain list, so the field's parameters are not registered a second time here
        self._field = [find_voxel_field(context.field_module())]
        self.voxels, self.every = voxels, every
        self.active = context.config.losses.get(self.name, 1.0) != 0
        self.calls = 0

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The grid's total variation (zero, uncomputed, when the term's weight is 0)."""
        grid = getattr(self._field[0], self.grid)
        if not self.active:
            return grid.new_zeros(())
        if not (self.training and grid.requires_grad and torch.is_grad_enabled()):
            return total_variation(grid, self.voxels)
        self.calls += 1
        if self.calls % self.every:
            with torch.no_grad():
                return total_variation(grid, self.voxels)
        value = total_variation(grid, self.voxels)
        return value * self.every - value.detach() * (self.every - 1)


class DensityTVLoss(_GridTV):
    """Total variation of the raw density grid."""

    grid = "density_grid"
    name = "tv_density"


class ColorTVLoss(_GridTV):
    """Total variation of the colour grid (features or SH coefficients)."""

    grid = "feature_grid"
    name = "tv_color"
