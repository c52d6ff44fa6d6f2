"""The silhouette loss (IDR, Yariv et al. 2020, eq. 7, for surface rendering; NeuS, Wang
et al. 2021, L_mask, for ``relight_volume``) and the radiance term that trains the
geometry under ``relight_volume``."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits

from atlas_core.api import ConfigError, Loss, RayBundle, RGBL2Loss, mask_cross_entropy


class MaskLoss(Loss):
    """Surface rendering: BCE between ``sigmoid(-alpha f)`` at each ray's surface or
    closest point and the target alpha, over rays that are not both hit and inside the
    mask. Under ``relight_volume``: BCE between the opacity of each ray's geometry image
    (``relight_opacity``: the shaded image's weights carry no gradient) and its alpha."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean BCE over all rays (zero where the ray hits inside the mask)."""
        volume = "relight_opacity" in outputs
        if "relight_logit" not in outputs and not volume:
            raise ConfigError(
                "loss 'relight_mask' needs renderer 'relight' or 'relight_volume' "
                "(--plugins relight)"
            )
        if rays.rgba is None:
            return outputs["acc"].sum() * 0.0
        if volume:
            return mask_cross_entropy(outputs["relight_opacity"], rays.rgba[:, 3:])
        target = rays.rgba[:, 3:]
        keep = ~((outputs["relight_hit"] > 0) & (target > 0.5))
        bce = binary_cross_entropy_with_logits(outputs["relight_logit"], target, reduction="none")
        return torch.where(keep, bce, torch.zeros_like(bce)).mean()


class RadianceLoss(RGBL2Loss):
    """Mean squared error of ``relight_volume``'s second image (``relight_radiance``: the
    light-aware network's or the field's radiance) against the target, after the run's
    colour transform as the image's own loss (``train.loss_linear`` and the rest): the
    term the geometry learns from."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The radiance image's mean squared error."""
        if "relight_radiance" not in outputs:
            raise ConfigError(
                "loss 'relight_radiance' needs renderer 'relight_volume' (an SDF grid field)"
            )
        return self.measure(outputs["relight_radiance"], outputs["target_rgb"], rays)
