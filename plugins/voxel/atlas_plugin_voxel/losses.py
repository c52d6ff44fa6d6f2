"""Total-variation regularisers of the voxel grids (DVGO, Sun et al. 2022, sec. 5.3;
Plenoxels, Fridovich-Keil et al. 2022, eq. 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.api import Loss, RayBundle
from atlas_core.api import grid as grids
from atlas_plugin_voxel.field import VoxelField

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


def find_voxel_field(field: nn.Module) -> VoxelField:
    """The VoxelField in ``field`` or among the modules it wraps."""
    for module in field.modules():
        if isinstance(module, VoxelField):
            return module
    raise ValueError(
        f"the run's field is {type(field).__name__}, which holds no voxel grid; "
        "the TV losses need --set field=voxel"
    )


def total_variation(
    grid: Tensor, shape: grids.Shape, voxels: int = 0, sparse: bool = False
) -> Tensor:
    """Mean over voxels and channels of the squared forward differences along x, y and z.

    ``grid`` is [X*Y*Z, C] with vertices ``shape``; the mean runs over the voxels that
    have all three forward neighbours. With ``voxels`` > 0 and a grid with more of them,
    it runs over that many random voxels instead: an unbiased estimate whose cost does
    not grow with the resolution, read through an embedding lookup, so that ``sparse``
    gives a gradient of the touched rows only.
    """
    nx, ny, nz = shape
    if voxels <= 0 or voxels >= (nx - 1) * (ny - 1) * (nz - 1):
        volume = grid.view(nx, ny, nz, -1)
        base = volume[:-1, :-1, :-1]
        dx = volume[1:, :-1, :-1] - base
        dy = volume[:-1, 1:, :-1] - base
        dz = volume[:-1, :-1, 1:] - base
        return (dx.square() + dy.square() + dz.square()).mean()
    device = grid.device
    ix = torch.randint(nx - 1, (voxels,), device=device)
    iy = torch.randint(ny - 1, (voxels,), device=device)
    iz = torch.randint(nz - 1, (voxels,), device=device)
    index = (ix * ny + iy) * nz + iz
    steps = torch.tensor([0, ny * nz, nz, 1], device=device)
    values = F.embedding(index[:, None] + steps, grid, sparse=sparse)  # [K, 4, C]
    diffs = values[:, 1:] - values[:, :1]
    return diffs.square().sum(dim=1).mean()


class _GridTV(Loss):
    """TV of one grid of the run's VoxelField, estimated on ``voxels`` random voxels.

    While training its gradient is sparse (the sampled voxels and their neighbours);
    with ``every`` > 1 it flows every ``every``-th call only, scaled by ``every`` (the
    same expected gradient), and the other calls return the value without a graph.
    """

    grid = ""
    name = ""

    def __init__(self, context: BuildContext, voxels: int = 65536, every: int = 1):
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
        field = self._field[0]
        grid = getattr(field, self.grid)
        if not self.active:
            return grid.new_zeros(())
        if not (self.training and grid.requires_grad and torch.is_grad_enabled()):
            return total_variation(grid, field.shape, self.voxels)
        self.calls += 1
        if self.calls % self.every:
            with torch.no_grad():
                return total_variation(grid, field.shape, self.voxels)
        value = total_variation(grid, field.shape, self.voxels, sparse=True)
        if self.every == 1:
            return value
        return value * self.every - value.detach() * (self.every - 1)


class DensityTVLoss(_GridTV):
    """Total variation of the raw density grid."""

    grid = "density_grid"
    name = "tv_density"


class ColorTVLoss(_GridTV):
    """Total variation of the colour grid (features or SH coefficients)."""

    grid = "feature_grid"
    name = "tv_color"
