"""The loss on the upsampled full-resolution crops."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from atlas_core.api import BLOCK_KEY, AtlasError, RayBundle, RGBL2Loss, crop_shape, undo_blocks


class UpsampleLoss(RGBL2Loss):
    """Mean squared error of ``upsampled_rgb`` against the full-resolution crop targets."""

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """Targets: each ray's block of pixels over its background, laid out as images."""
        if "upsampled_rgb" not in outputs or BLOCK_KEY not in rays.extras:
            raise AtlasError("losses.upsample_rgb needs the upsample renderer and crop batches")
        count, height, width = crop_shape(rays)
        rgba = undo_blocks(rays.extras[BLOCK_KEY], count, height, width)
        stride = rgba.shape[1] // height
        background = outputs["background"].view(count, height, width, 3).permute(0, 3, 1, 2)
        background = F.interpolate(background, scale_factor=stride, mode="nearest")
        background = background.permute(0, 2, 3, 1)
        alpha = rgba[..., 3:]
        target = (rgba[..., :3] * alpha + background * (1 - alpha)).reshape(-1, 3)
        return self.measure(outputs["upsampled_rgb"], target, rays)
