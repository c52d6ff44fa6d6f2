"""Smooth surface normals: UNISURF's surface regulariser (Oechsle et al. 2021, eq. 9).

``mean |n(x) - n(x + e)|^2`` over each ray's surface point ``x`` (the depth of rays at
least half opaque) with a small random offset ``e``: a curvature penalty that flattens
bumps the photometric terms leave on flat, textured surfaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from atlas_core.api import Loss, RayBundle, plugin_options
from atlas_plugin_volsdf.losses import required_sdf_module, sdf_gradients_at, surface_rays
from atlas_plugin_volsdf.options import VolSDFOptions

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

OFFSET = 0.005  # std of the offset e, as a fraction of the scene box's longest side


class NormalSmoothnessLoss(Loss):
    """Squared difference of unit SDF normals at surface points and jittered copies.

    With ``volsdf.normal_smoothness_until=N`` the term is scaled by ``1 - step / N`` (zero
    from step N on): it flattens the bumps an SDF starts with, then leaves fine detail to
    the photometric terms (Neuralangelo, Li et al. 2023, decays its curvature term so).
    """

    def __init__(self, context: BuildContext):
        super().__init__()
        # a plain list: the field is not registered twice
        self._sdf = [required_sdf_module(context, "loss 'normal_smoothness'")]
        bounds = context.scene.bounds
        self.offset = OFFSET * max(hi - lo for lo, hi in zip(bounds[:3], bounds[3:], strict=True))
        self.until = plugin_options(context.config, "volsdf", VolSDFOptions).normal_smoothness_until
        # in checkpoints, so a resumed run goes on where the schedule was
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def scale(self) -> float:
        """The schedule's factor on the term at the current step (1 without a schedule)."""
        return max(0.0, 1.0 - int(self.step) / self.until) if self.until else 1.0

    def grow(self, step: int) -> bool:
        """Follow the training step (the core calls this after every step); no new
        parameters."""
        self.step.fill_(step)
        return False

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Checkpoints written before the schedule existed have no step: keep the current."""
        state_dict.setdefault(prefix + "step", self.step.clone())
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The mean over the batch's surface points (zero without any, without an SDF, or
        past the schedule's end)."""
        scale = self.scale
        if scale == 0.0:
            return outputs["acc"].new_zeros(())
        opaque = surface_rays(outputs)
        depth = outputs["depth"].detach().view(-1)[opaque]
        points = rays.points(opaque, depth)  # in the space the field sees (contracted, NDC)
        jittered = points + self.offset * torch.randn_like(points)
        gradients = sdf_gradients_at(self._sdf[0], torch.cat([points, jittered]))
        if not len(gradients):  # no surface point, or no SDF yet (a grid's warm-up)
            return outputs["acc"].new_zeros(())
        normals = gradients / gradients.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        here, there = normals.chunk(2)
        return scale * (here - there).square().sum(dim=-1).mean()
