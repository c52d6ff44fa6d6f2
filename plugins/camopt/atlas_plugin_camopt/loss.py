"""``camopt_l2``: an L2 penalty on the pose corrections of the batch's images."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from atlas_core.api import Loss, RayBundle
from atlas_plugin_camopt.field import PoseCorrection, find_camopt

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

__all__ = ["PoseL2Loss"]


class PoseL2Loss(Loss):
    """Mean squared norm of the 6-vector corrections of the batch's rays (``camopt.l2``)."""

    def __init__(self, context: BuildContext):
        super().__init__()
        if find_camopt(context.field_module()) is None:
            raise ValueError("needs the camopt plugin: add camopt to --plugins")
        self.context = context  # not a submodule: the field stays owned by the pipeline

    def field(self) -> PoseCorrection:
        """The run's pose-correction wrapper."""
        found = find_camopt(self.context.field_module())
        assert found is not None
        return found

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """``mean_r |(w, t)_{camera(r)}|^2`` over the batch's rays."""
        return self.field().corrections[rays.camera_indices].square().sum(dim=-1).mean()
