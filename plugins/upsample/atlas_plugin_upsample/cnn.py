"""The upsampling CNN: low-resolution feature images to full-resolution rgb."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class UpsampleCNN(nn.Module):
    """3x3 convolutions, then ``scale`` x sub-pixel upsampling (Shi et al. 2016).

    As GIRAFFE's neural renderer (Niemeyer and Geiger 2021, sec. 3.4) the CNN predicts
    full-resolution colour; here as a residual over the bilinearly upsampled rendered
    rgb (the first three input channels), so an untrained CNN already gives a sensible
    image. The last layer starts at zero.
    """

    def __init__(self, channels: int, scale: int, width: int = 32, blocks: int = 2):
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(width, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(layers[-2].weight)
        nn.init.zeros_(layers[-2].bias)

    def forward(self, images: Tensor) -> Tensor:
        """Images [B, C, h, w] (rgb first) to rgb [B, 3, h*scale, w*scale]."""
        base = images[:, :3]
        if self.scale > 1:
            base = F.interpolate(
                base, scale_factor=self.scale, mode="bilinear", align_corners=False
            )
        return base + self.body(images)
