"""The plugin's own options: ``--set mip.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass

from atlas_plugin_mip.gaussians import Shape


@dataclass(frozen=True)
class MipOptions:
    """``shape``: the footprint each interval covers, ``cone`` (the paper's) or ``cylinder``;
    ``multisamples``: points per frustum a grid field averages, 0 for the field's own
    choice (ngp 1: its level weights do the filtering; voxel 6, Zip-NeRF's count)."""

    shape: Shape = "cone"
    multisamples: int = 0

    def __post_init__(self) -> None:
        if self.multisamples < 0:
            raise ValueError(f"multisamples must be >= 0, got {self.multisamples}")
