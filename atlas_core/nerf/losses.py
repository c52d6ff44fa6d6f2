"""Loss terms; the run's loss is their sum weighted by ``config.losses``.

Colour losses compare images after the run's colour transform (``train.loss_space``,
``train.loss_linear``, ``train.tone_map``, ``train.loss_gamma``; see
``atlas_core.nerf.colour``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn
from torch.nn import functional

from atlas_core.nerf.colour import LossColour
from atlas_core.nerf.rays import RayBundle

if TYPE_CHECKING:
    from atlas_core.build import BuildContext

__all__ = [
    "ColourLoss",
    "Loss",
    "RGBL1Loss",
    "RGBL2Loss",
    "RGBRMSELoss",
    "loss_colour",
    "mask_cross_entropy",
]

MASK_EPS = 1e-3  # opacities clamped to [eps, 1 - eps] before the cross-entropy, as NeuS does


class Loss(nn.Module):
    """Base class: ``forward(rays, outputs, field_outputs) -> scalar``."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The unweighted loss value."""
        raise NotImplementedError


def mask_cross_entropy(opacity: Tensor, alpha: Tensor) -> Tensor:
    """Mean binary cross-entropy of ray opacities [R, 1] against target alphas [R, 1]:
    NeuS's mask term (Wang et al. 2021, sec. 3.4, L_mask), opacities clamped to
    [MASK_EPS, 1 - MASK_EPS]."""
    clamped = opacity.clamp(MASK_EPS, 1.0 - MASK_EPS)
    return functional.binary_cross_entropy(clamped, alpha.to(clamped.dtype))


def loss_colour(context: BuildContext | None) -> LossColour:
    """The run's colour transform for losses (identity without a context)."""
    if context is None:
        return LossColour()
    train = context.config.train
    return LossColour(train.loss_space, train.tone_map, train.loss_gamma, train.loss_linear)


class ColourLoss(Loss):
    """A loss on ``rgb`` (and ``coarse_rgb`` when present) vs ``target_rgb``."""

    def __init__(self, context: BuildContext | None = None):
        super().__init__()
        self.colour = loss_colour(context)
        self.coarse_weight = 1.0 if context is None else context.config.train.coarse_weight

    def error(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Error between transformed colours [R, C]."""
        raise NotImplementedError

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Error of the fine image plus, as in NeRF, that of the coarse image (weighted by
        ``train.coarse_weight``: 1 in NeRF, 0.1 in Mip-NeRF)."""
        target = outputs["target_rgb"]
        loss = self.measure(outputs["rgb"], target, rays)
        if "coarse_rgb" in outputs and self.coarse_weight:
            loss = loss + self.coarse_weight * self.measure(outputs["coarse_rgb"], target, rays)
        return loss

    def measure(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """The error of an image [R, 3] against its untransformed target [R, 3], both put
        through the run's colour transform (for subclasses that score another image)."""
        if not self.colour.identity:
            target = self.colour(target)
        return self.compare(prediction, target, rays)

    def compare(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Transform the prediction, then measure its error against the transformed target."""
        if not self.colour.identity:
            prediction = self.colour(prediction)
        return self.error(prediction, target, rays)


class RGBL2Loss(ColourLoss):
    """Mean squared error on colour (NeRF eq. 6)."""

    def error(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Mean squared error."""
        return (prediction - target).square().mean()


class RGBL1Loss(ColourLoss):
    """Mean absolute error on colour."""

    def error(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Mean absolute error."""
        return (prediction - target).abs().mean()


class RGBRMSELoss(ColourLoss):
    """Root mean squared error on colour."""

    def error(self, prediction: Tensor, target: Tensor, rays: RayBundle) -> Tensor:
        """Square root of the mean squared error (offset so its gradient stays finite at 0)."""
        return ((prediction - target).square().mean() + 1e-12).sqrt()
