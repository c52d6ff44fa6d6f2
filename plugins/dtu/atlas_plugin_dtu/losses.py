"""The ``mask`` loss: rendered opacity against the target alpha (the scan's mask)."""

from __future__ import annotations

from torch import Tensor

from atlas_core.api import Loss, RayBundle, mask_cross_entropy


class MaskLoss(Loss):
    """Binary cross-entropy between a ray's opacity and its alpha.

    NeuS (Wang et al. 2021, sec. 3.4, L_mask) on the accumulated weights; IDR (Yariv et
    al. 2020, eq. 7) uses the same cross-entropy on a soft surface occupancy. The
    coarse pass (NeRF's hierarchical sampler) is supervised too when present.
    """

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Mean cross-entropy over the batch's rays."""
        if rays.rgba is None:
            raise ValueError("the mask loss needs rays with target alpha")
        target = rays.rgba[:, 3:]
        loss = mask_cross_entropy(outputs["acc"], target)
        if "coarse_acc" in outputs:
            loss = loss + mask_cross_entropy(outputs["coarse_acc"], target)
        return loss
