"""``latent_l2``: an L2 penalty on the NeRF auto-encoder's latent codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from atlas_core.api import Loss, RayBundle
from atlas_plugin_nerfae.field import NeRFAEField

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


class LatentL2Loss(Loss):
    """Mean squared latent entry over the batch's samples (field output ``latent``)."""

    def __init__(self, context: BuildContext):
        super().__init__()
        field = context.field_module()
        found = [m for m in field.modules() if isinstance(m, NeRFAEField)]
        if not found:
            raise ValueError(
                f"needs the nerfae field's latents, but the field is "
                f"'{context.config.field.name}'; use --set field=nerfae or drop losses.latent_l2"
            )
        if found[0].normalization == "l2":
            raise ValueError(
                "l2-normalised latents all have length 1, so the penalty is constant; "
                "drop losses.latent_l2 or use field.normalization=none or layer"
            )

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """``mean(latent^2)``; zero for a batch without samples."""
        latent = field_outputs["latent"]
        if latent.numel() == 0:
            return latent.sum()
        return latent.square().mean()
