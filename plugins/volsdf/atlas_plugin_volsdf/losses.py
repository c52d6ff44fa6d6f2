"""The eikonal loss: SDF gradients of unit length (Gropp et al. 2020, IGR; VolSDF eq. 14)."""

from __future__ import annotations

from torch import Tensor

from atlas_core.errors import ConfigError
from atlas_core.losses import Loss
from atlas_core.rays import RayBundle


class EikonalLoss(Loss):
    """``mean((|grad d(x)| - 1)^2)`` over the sample points of the batch."""

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
        return (gradients.norm(dim=-1) - 1.0).square().mean()
