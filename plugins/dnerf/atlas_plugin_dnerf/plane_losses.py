"""Regularisers of the K-Planes field (Fridovich-Keil et al. 2023, sec. 3.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from atlas_core.api import Loss, RayBundle
from atlas_plugin_dnerf.kplanes import KPlanesField

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

__all__ = [
    "PlaneTVLoss",
    "StaticTimeLoss",
    "TimeSmoothnessLoss",
    "plane_tv",
    "static_time",
    "time_smoothness",
]


def plane_tv(plane: Tensor, time_axis: bool) -> Tensor:
    """Total variation in space of planes [P, C, H, W]: mean squared difference of
    neighbouring cells along W, and along H unless H is time (K-Planes eq. 5)."""
    total = (plane[..., :, 1:] - plane[..., :, :-1]).square().mean()
    if not time_axis:
        total = total + (plane[..., 1:, :] - plane[..., :-1, :]).square().mean()
    return total


def time_smoothness(plane: Tensor) -> Tensor:
    """Mean squared 1D Laplacian along time (H) of space-time planes [P, C, T, W]:
    (p[t+1] - 2 p[t] + p[t-1])^2 (K-Planes eq. 6)."""
    return (plane[:, :, 2:] - 2.0 * plane[:, :, 1:-1] + plane[:, :, :-2]).square().mean()


def static_time(plane: Tensor) -> Tensor:
    """Mean |1 - p| of space-time planes: prefers a static scene (K-Planes eq. 7)."""
    return (1.0 - plane).abs().mean()


def find_kplanes(context: BuildContext) -> KPlanesField:
    """The run's K-Planes field, or a ValueError naming what the loss needs."""
    for module in context.field_module().modules():
        if isinstance(module, KPlanesField):
            return module
    raise ValueError("needs the K-Planes field: --plugins dnerf --set field=kplanes")


class _PlaneLoss(Loss):
    """A loss on the planes of the run's K-Planes field."""

    def __init__(self, context: BuildContext):
        super().__init__()
        find_kplanes(context)
        self.context = context  # not a submodule: the field stays owned by the pipeline

    def field(self) -> KPlanesField:
        """The run's K-Planes field."""
        return find_kplanes(self.context)


class PlaneTVLoss(_PlaneLoss):
    """Total variation in space of all six planes, summed over scales."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Sum of the planes' TV."""
        field = self.field()
        space = sum(plane_tv(p, time_axis=False) for p in field.space_planes)
        return space + sum(plane_tv(p, time_axis=True) for p in field.time_planes)


class TimeSmoothnessLoss(_PlaneLoss):
    """Smoothness in time of the space-time planes, summed over scales."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Sum of the planes' squared time Laplacians."""
        return sum(time_smoothness(p) for p in self.field().time_planes)


class StaticTimeLoss(_PlaneLoss):
    """Sparse transients: space-time planes near 1, summed over scales."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Sum of the planes' mean |1 - p|."""
        return sum(static_time(p) for p in self.field().time_planes)
