"""Regularisers of the motion field, registered as loss terms with weights.

Each term checks when the run is built that the run's field is a dnerf deformed field
(and, for the spline terms, the spline variant), so a wrong combination stops at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.api import Loss, RayBundle
from atlas_plugin_dnerf.deformation import Deformation, SplineDeformation
from atlas_plugin_dnerf.field import DeformedField

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

DIVERGENCE_POINTS = 1024  # samples per step at which the divergence is estimated
DIVERGENCE_STEP = 0.01  # central-difference step, world units


def find_deformed(context: BuildContext, loss: str, spline: bool = False) -> DeformedField:
    """The run's DeformedField, or a ValueError naming what the loss needs."""
    for module in context.field_module().modules():
        if isinstance(module, DeformedField):
            if spline and not isinstance(module.deformation, SplineDeformation):
                raise ValueError(f"needs --set dnerf.deformation=spline (it regularises {loss})")
            return module
    raise ValueError("needs the dnerf plugin's deformation: add dnerf to --plugins")


class _MotionLoss(Loss):
    """A loss on the motion field of the run's deformed field."""

    spline = False

    def __init__(self, context: BuildContext):
        super().__init__()
        find_deformed(context, type(self).__name__, self.spline)
        self.context = context  # not a submodule: the field stays owned by the pipeline

    def deformation(self) -> Deformation:
        """The run's deformation module."""
        return find_deformed(self.context, type(self).__name__).deformation


class DisplacementLoss(_MotionLoss):
    """Mean squared displacement |dx|^2: prefers small motion."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean of |dx|^2 over the samples."""
        return field_outputs["deformation"].square().sum(-1).mean()


def divergence(motion: torch.nn.Module, positions: Tensor, times: Tensor, step: float) -> Tensor:
    """div dx at ``positions`` [M, 3] and ``times`` [M, 1] by central differences: [M]."""
    offsets = torch.eye(3, device=positions.device, dtype=positions.dtype) * step
    shifted = torch.cat([positions[None] + offsets[:, None], positions[None] - offsets[:, None]])
    dx = motion(shifted.reshape(-1, 3), times.repeat(6, 1))["deformation"].view(2, 3, -1, 3)
    axis = torch.arange(3, device=positions.device)
    return ((dx[0, axis, :, axis] - dx[1, axis, :, axis]) / (2 * step)).sum(dim=0)


class DivergenceLoss(_MotionLoss):
    """Mean squared divergence of the motion field at up to 1024 random samples, by
    central differences: a volume-preserving prior, as the divergence term of Nerfies'
    and NSFF's motion regularisers (Li et al. 2021, Neural Scene Flow Fields, sec. 3.3)."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean of (div dx)^2."""
        positions = field_outputs["sample_positions"].detach()
        times = field_outputs["sample_times"].detach()
        if positions.shape[0] > DIVERGENCE_POINTS:
            pick = torch.randint(positions.shape[0], (DIVERGENCE_POINTS,), device=positions.device)
            positions, times = positions[pick], times[pick]
        return divergence(self.deformation(), positions, times, DIVERGENCE_STEP).square().mean()


class SplineLengthLoss(_MotionLoss):
    """Length of each sample's Bezier control polygon sum |P_{i+1} - P_i| (an upper bound
    of the curve's length): prefers short, simple paths."""

    spline = True

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean control-polygon length."""
        points = field_outputs["control_points"]
        return (points[:, 1:] - points[:, :-1]).norm(dim=-1).sum(dim=-1).mean()


class RigidityLoss(_MotionLoss):
    """Mean rigidity score: prefers static points, so only what must move does
    (Non-Rigid NeRF, Tretschk et al. 2021, sec. 3.3)."""

    spline = True

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean rigidity over the samples."""
        return field_outputs["rigidity"].mean()
