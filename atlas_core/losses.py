"""Loss terms; the run's loss is their sum weighted by ``config.losses``."""

from __future__ import annotations

from torch import Tensor, nn

from atlas_core.rays import RayBundle


class Loss(nn.Module):
    """Base class: ``forward(rays, outputs, field_outputs) -> scalar``."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The unweighted loss value."""
        raise NotImplementedError


class _ImageLoss(Loss):
    """A per-pixel loss on ``rgb`` (and ``coarse_rgb`` when present) vs ``target_rgb``."""

    def error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Mean error between two images [R, 3]."""
        raise NotImplementedError

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Error of the fine image plus, as in NeRF, that of the coarse image."""
        target = outputs["target_rgb"]
        loss = self.error(outputs["rgb"], target)
        if "coarse_rgb" in outputs:
            loss = loss + self.error(outputs["coarse_rgb"], target)
        return loss


class RGBL2Loss(_ImageLoss):
    """Mean squared error on colour (NeRF eq. 6)."""

    def error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Mean squared error."""
        return (prediction - target).square().mean()


class RGBL1Loss(_ImageLoss):
    """Mean absolute error on colour."""

    def error(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Mean absolute error."""
        return (prediction - target).abs().mean()
