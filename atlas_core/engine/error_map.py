"""Rays drawn where the images are still wrong: a running error per block of pixels.

Instant-NGP's testbed draws training pixels from an error map (Müller et al. 2022), and
DyNeRF samples rays by importance (Li et al. 2022, "Neural 3D Video Synthesis", sec. 3.3)
because in a dynamic scene the few pixels that move carry most of the error: with
uniform rays, an object that covers 4% of the frames gets 4% of every batch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.errors import ConfigError

if TYPE_CHECKING:
    from atlas_core.config import RunConfig
    from atlas_core.data.scene import Views

__all__ = ["BLOCK", "ErrorMap", "error_map_for", "uniform_pixels"]

BLOCK = 8  # pixels per block side: each block is seen often enough for its mean to settle
DECAY = 0.9  # a block's error keeps this much of its last value at each visit
FLOOR = 1e-4  # every block keeps some chance (the uniform share draws the rest anyway)


class ErrorMap:
    """Running mean squared error of each ``BLOCK`` x ``BLOCK`` block of every training
    view; ``share`` of each batch is drawn in proportion to it, the rest uniformly.

    Blocks start equal, so the first draws are uniform; each visit moves a block's value
    towards the squared error of the ray just rendered there.
    """

    def __init__(self, views: int, height: int, width: int, share: float, device: torch.device):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.shape = (views, height, width)
        self.share = share
        self.blocks = (math.ceil(height / BLOCK), math.ceil(width / BLOCK))
        self.errors = torch.ones(views * self.blocks[0] * self.blocks[1], device=device)
        self.drawn: tuple[Tensor, Tensor, Tensor] | None = None

    def draw(self, views: Views, count: int) -> tuple[Tensor, Tensor, Tensor] | None:
        """Image, row and column indices of ``count`` rays, or None for views the map was
        not made for (a plugin's per-step views)."""
        self.drawn = None
        if (len(views), views.height, views.width) != self.shape:
            return None
        device = self.errors.device
        chosen = round(count * self.share)
        cells = torch.multinomial(self.errors.clamp_min(FLOOR), chosen, replacement=True)
        per_view = self.blocks[0] * self.blocks[1]
        block_rows = (cells % per_view) // self.blocks[1] * BLOCK
        block_cols = (cells % per_view) % self.blocks[1] * BLOCK
        heights = (views.height - block_rows).clamp_max(BLOCK)
        widths = (views.width - block_cols).clamp_max(BLOCK)
        rows = block_rows + (torch.rand(chosen, device=device) * heights).long()
        cols = block_cols + (torch.rand(chosen, device=device) * widths).long()
        rest = uniform_pixels(views, count - chosen, device)
        ours = (cells // per_view, rows, cols)
        self.drawn = tuple(torch.cat([a, b]) for a, b in zip(ours, rest, strict=True))
        return self.drawn

    def record(self, outputs: dict[str, Tensor]) -> None:
        """Move the drawn rays' blocks towards their squared colour errors."""
        if self.drawn is None or "target_rgb" not in outputs:
            return
        images, rows, cols = self.drawn
        error = (outputs["rgb"].detach() - outputs["target_rgb"]).square().mean(-1)
        if error.shape[0] != images.shape[0]:
            return  # the renderer answered fewer rays than drawn: nothing to attribute
        cells = (images * self.blocks[0] + rows // BLOCK) * self.blocks[1] + cols // BLOCK
        self.errors[cells] = DECAY * self.errors[cells] + (1.0 - DECAY) * error.float()
        self.drawn = None


def uniform_pixels(views: Views, count: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Image, row and column indices of ``count`` pixels drawn uniformly over ``views``."""
    return (
        torch.randint(len(views), (count,)).to(device),
        torch.randint(views.height, (count,)).to(device),
        torch.randint(views.width, (count,)).to(device),
    )


def error_map_for(config: RunConfig, world: object | None, views: Views) -> ErrorMap | None:
    """The run's error map (``train.error_sampling`` > 0), checked against its settings."""
    share = config.train.error_sampling
    if share <= 0:
        return None
    if share > 1:
        raise ConfigError(f"train.error_sampling must be in [0, 1], got {share}")
    if config.train.batch != "rays":
        raise ConfigError("train.error_sampling draws single rays: it needs train.batch=rays")
    if world is not None:
        raise ConfigError("train.error_sampling is not supported in data-parallel (torchrun) runs")
    return ErrorMap(len(views), views.height, views.width, share, views.c2w.device)
