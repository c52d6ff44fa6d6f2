"""The eikonal loss: SDF gradients of unit length (Gropp et al. 2020, IGR; VolSDF eq. 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.errors import ConfigError
from atlas_core.grid import Shape
from atlas_core.losses import Loss
from atlas_core.rays import RayBundle
from atlas_plugin_volsdf.grid_field import SDFGridField
from atlas_plugin_volsdf.options import VolSDFOptions

if TYPE_CHECKING:
    from atlas_core.pipeline import BuildContext


def find_sdf_module(field: nn.Module) -> nn.Module | None:
    """The first module inside ``field`` (itself included) with an ``sdf()`` method."""
    for module in field.modules():
        if callable(getattr(module, "sdf", None)):
            return module
    return None


class EikonalLoss(Loss):
    """``mean((|grad d(x)| - 1)^2)`` over the batch's sample points.

    With ``--set volsdf.eikonal_points=N`` the term also covers N uniform random points
    in the scene box each training step (as in VolSDF), so unseen space stays an SDF.
    """

    def __init__(self, context: BuildContext | None = None):
        super().__init__()
        self.points = 0
        self._sdf: list[nn.Module] = []  # a plain list: the field is not registered twice
        if context is None:
            return
        from atlas_core.pipeline import plugin_options

        self.points = plugin_options(context.config, "volsdf", VolSDFOptions).eikonal_points
        if self.points:
            module = find_sdf_module(context.field_module())
            if module is None:
                raise ConfigError("volsdf.eikonal_points needs a field with an SDF (volsdf)")
            self._sdf.append(module)
            bounds = torch.tensor(context.scene.bounds, dtype=torch.float32)
            self.register_buffer("box_low", bounds[:3], persistent=False)
            self.register_buffer("box_size", bounds[3:] - bounds[:3], persistent=False)

    def random_gradients(self) -> Tensor:
        """SDF gradients [points, 3] at uniform random points in the scene box."""
        unit = torch.rand(self.points, 3, device=self.box_low.device)
        positions = self.box_low + self.box_size * unit
        module = self._sdf[0]
        if callable(getattr(module, "sdf_gradient", None)):  # grids: the exact derivative
            return module.sdf_gradient(positions)
        positions.requires_grad_(True)
        sdf = module.sdf(positions)
        (gradients,) = torch.autograd.grad(sdf, positions, torch.ones_like(sdf), create_graph=True)
        return gradients

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The mean squared deviation of the SDF gradient norm from one."""
        gradients = field_outputs.get("sdf_gradients")
        if gradients is None:
            raise ConfigError(
                "loss 'eikonal' needs a field with an SDF (e.g. field=volsdf); "
                "remove it with --set losses.eikonal=0 or choose such a field"
            )
        if self.points and self.training and torch.is_grad_enabled():
            gradients = torch.cat([gradients, self.random_gradients()])
        if not len(gradients):  # no SDF yet (volsdf_grid's density warm-up)
            return gradients.new_zeros(())
        return (gradients.norm(dim=-1) - 1.0).square().mean()


def find_sdf_grid(field: nn.Module) -> SDFGridField:
    """The SDFGridField in ``field`` or among the modules it wraps."""
    for module in field.modules():
        if isinstance(module, SDFGridField):
            return module
    raise ConfigError(
        f"loss 'sdf_smooth' needs the volsdf_grid field (the run's is {type(field).__name__}); "
        "set --set field=volsdf_grid or remove the loss"
    )


def grid_laplacian(
    grid: Tensor, shape: Shape, spacing: Tensor, voxels: int, sparse: bool
) -> Tensor:
    """Mean over ``voxels`` random interior vertices of the squared second differences of
    the one-channel ``grid`` along x, y and z, each divided by the axis spacing (the
    change of the SDF's slope across one cell: 0 for any plane)."""
    nx, ny, nz = shape
    if min(shape) < 3:
        return grid.new_zeros(())
    device = grid.device
    i = torch.stack([torch.randint(1, n - 1, (voxels,), device=device) for n in shape], dim=-1)
    index = (i[:, 0] * ny + i[:, 1]) * nz + i[:, 2]
    strides = torch.tensor([ny * nz, nz, 1], device=device)
    neighbours = torch.cat([index[:, None], index[:, None] + strides, index[:, None] - strides], 1)
    values = F.embedding(neighbours, grid, sparse=sparse)[..., 0]  # [K, 7]
    second = values[:, 1:4] + values[:, 4:7] - 2.0 * values[:, :1]
    return (second / spacing).square().sum(dim=-1).mean()


class SDFSmoothLoss(Loss):
    """Smoothness of the volsdf_grid SDF: squared second differences at random vertices.

    A discrete Laplacian-style prior on the grid (as the smoothness terms of grid SDFs,
    e.g. Voxurf, Wu et al. 2023): planes cost nothing, the eikonal term keeps the slope
    at one, and this keeps the slope from changing abruptly between cells, which removes
    the noise dense grids otherwise fit. ``voxels`` random vertices per step.
    """

    def __init__(self, context: BuildContext, voxels: int = 65536):
        super().__init__()
        if voxels < 1:
            raise ValueError("voxels must be >= 1")
        self._field = [find_sdf_grid(context.field_module())]  # not registered twice
        self.voxels = voxels

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The estimated mean squared slope change of the SDF grid."""
        field = self._field[0]
        grid = field.sdf_grid
        if not bool(field.is_sdf):  # the density warm-up: nothing to smooth yet
            return grid.new_zeros(())
        sparse = self.training and grid.requires_grad and torch.is_grad_enabled()
        spacing = (field.high - field.low) / (field.dims - 1).to(field.low.dtype)
        return grid_laplacian(grid, field.shape, spacing, self.voxels, sparse)
