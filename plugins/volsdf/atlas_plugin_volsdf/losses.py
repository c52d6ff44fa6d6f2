"""The eikonal loss: SDF gradients of unit length (Gropp et al. 2020, IGR; VolSDF eq. 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import ConfigError, HasSDF, HasSDFGradient, Loss, RayBundle, first_with
from atlas_plugin_volsdf.options import VolSDFOptions

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


OPAQUE = 0.5  # rays at least this opaque have a surface point (at their expected depth)


def find_sdf_module(field: nn.Module) -> nn.Module | None:
    """The first module inside ``field`` (itself included) with an ``sdf()`` method."""
    return first_with(field, HasSDF)


def required_sdf_module(context: BuildContext, what: str) -> nn.Module:
    """The run's SDF module; a ConfigError saying that ``what`` needs one otherwise."""
    module = find_sdf_module(context.field_module())
    if module is None:
        raise ConfigError(f"{what} needs a field with an SDF (volsdf)")
    return module


def surface_rays(outputs: dict[str, Tensor], limit: int = 0) -> Tensor:
    """Indices of the rays at least ``OPAQUE`` opaque (``limit`` of them at random when
    more, and ``limit`` > 0)."""
    opaque = torch.nonzero(outputs["acc"].detach().view(-1) >= OPAQUE).view(-1)
    if 0 < limit < len(opaque):
        opaque = opaque[torch.randperm(len(opaque), device=opaque.device)[:limit]]
    return opaque


def sdf_gradients_at(module: nn.Module, positions: Tensor) -> Tensor:
    """The SDF's gradient [N, 3] at positions [N, 3] (with a graph to the SDF's parameters):
    a grid's own derivative, else autograd (empty [0, 3] while a grid has no SDF yet)."""
    if isinstance(module, HasSDFGradient):
        return module.sdf_gradient(positions)
    positions = positions.detach().requires_grad_(True)
    sdf = module.sdf(positions)
    (gradients,) = torch.autograd.grad(sdf, positions, torch.ones_like(sdf), create_graph=True)
    return gradients


class EikonalLoss(Loss):
    """``mean((|grad d(x)| - 1)^2)`` over the batch's sample points.

    A field whose gradients carry the term at only some samples marks those with a
    per-sample ``eikonal_mask`` (``volsdf_hash``); the mean is then over them.
    With ``--set volsdf.eikonal_points=N`` the term also covers N uniform random points
    in the scene box each training step (as in VolSDF), so unseen space stays an SDF.
    """

    def __init__(self, context: BuildContext | None = None):
        super().__init__()
        self.points = 0
        self._sdf: list[nn.Module] = []  # a plain list: the field is not registered twice
        if context is None:
            return
        from atlas_core.api import plugin_options

        self.points = plugin_options(context.config, "volsdf", VolSDFOptions).eikonal_points
        if self.points:
            self._sdf.append(required_sdf_module(context, "volsdf.eikonal_points"))
            bounds = torch.tensor(context.scene.bounds, dtype=torch.float32)
            self.register_buffer("box_low", bounds[:3], persistent=False)
            self.register_buffer("box_size", bounds[3:] - bounds[:3], persistent=False)

    def random_gradients(self) -> Tensor:
        """SDF gradients [points, 3] at uniform random points in the scene box."""
        unit = torch.rand(self.points, 3, device=self.box_low.device)
        return sdf_gradients_at(self._sdf[0], self.box_low + self.box_size * unit)

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The mean squared deviation of the SDF gradient norm from one."""
        gradients = field_outputs.get("sdf_gradients")
        mask = field_outputs.get("eikonal_mask")
        if gradients is not None and mask is not None:
            gradients = gradients[mask.view(-1) > 0]
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
