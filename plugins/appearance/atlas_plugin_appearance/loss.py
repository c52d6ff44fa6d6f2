"""``appearance_l2``: a small L2 penalty on the codes of the batch's images."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from atlas_core.api import Loss, RayBundle
from atlas_plugin_appearance.field import AppearanceField, find_appearance

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

__all__ = ["CodeL2Loss"]


class CodeL2Loss(Loss):
    """Mean squared norm of the appearance codes of the batch's rays (weight: ``appearance.l2``)."""

    def __init__(self, context: BuildContext):
        super().__init__()
        if find_appearance(context.field_module()) is None:
            raise ValueError("needs the appearance plugin: add appearance to --plugins")
        self.context = context  # not a submodule: the field stays owned by the pipeline

    def field(self) -> AppearanceField:
        """The run's appearance wrapper."""
        found = find_appearance(self.context.field_module())
        assert found is not None
        return found

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """``mean_r |z_{camera(r)}|^2`` over the batch's rays."""
        codes = self.field().codes[rays.camera_indices]
        return codes.square().sum(dim=-1).mean()
