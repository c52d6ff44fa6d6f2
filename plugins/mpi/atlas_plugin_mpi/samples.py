"""PlaneSamples: packed samples that start on the planes of a multiplane image."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from atlas_core.api import RaySamples

__all__ = ["PlaneSamples"]


@dataclass
class PlaneSamples(RaySamples):
    """RaySamples that start on planes; ``positions`` are the plane hits."""

    plane_indices: Tensor | None = None  # [N], long

    @property
    def positions(self) -> Tensor:
        """Where each interval's ray meets its plane [N, 3]."""
        return self.origins + self.directions * self.t_starts
