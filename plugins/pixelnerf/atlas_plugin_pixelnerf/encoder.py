"""The image encoder: a small ResNet-like CNN trained from scratch, as a feature pyramid.

pixelNeRF (Yu et al. 2021, sec. 4.1) takes ResNet-34 features before each of its first
four pooling stages, upsamples them bilinearly to half the image size and concatenates
them. Here: a stride-2 stem and ``stages`` residual stages, each halving the resolution
and doubling the channels, upsampled to the stem's size and concatenated; with
``with_image`` the image's own colours (area-averaged to that size) are appended.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


def norm(channels: int) -> nn.GroupNorm:
    """Group norm (batch statistics would differ between training and a one-image eval)."""
    return nn.GroupNorm(min(8, channels), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a (strided) shortcut, He et al. 2016."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = norm(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))

    def forward(self, x: Tensor) -> Tensor:
        """[B, cin, H, W] -> [B, cout, H / stride, W / stride]."""
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.shortcut(x))


class FeaturePyramidEncoder(nn.Module):
    """Images [B, 3, H, W] in [0, 1] to features [B, out_dim, H/2, W/2]."""

    def __init__(self, width: int = 32, stages: int = 2, with_image: bool = False):
        super().__init__()
        if width < 1 or stages < 0:
            raise ValueError("encoder width must be >= 1 and stages >= 0")
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), norm(width), nn.ReLU())
        self.stages = nn.ModuleList()
        channels = [width]
        for _ in range(stages):
            self.stages.append(ResidualBlock(channels[-1], 2 * channels[-1], 2))
            channels.append(2 * channels[-1])
        self.with_image = with_image
        self.out_dim = sum(channels) + (3 if with_image else 0)

    def forward(self, images: Tensor) -> Tensor:
        """Concatenated pyramid levels at the stem's resolution."""
        h = self.stem(images * 2 - 1)  # inputs in [-1, 1], as pixelNeRF normalises them
        levels = [h]
        for stage in self.stages:
            h = stage(h)
            levels.append(F.interpolate(h, size=levels[0].shape[-2:], mode="bilinear",
                                        align_corners=False))  # fmt: skip
        if self.with_image:  # the colours themselves, area-averaged to the stem's size
            levels.append(F.adaptive_avg_pool2d(images, levels[0].shape[-2:]))
        return torch.cat(levels, dim=1)
