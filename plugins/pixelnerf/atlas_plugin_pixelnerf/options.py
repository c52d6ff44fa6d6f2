"""The plugin's own options, set with ``--set pixelnerf.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PixelNeRFOptions:
    """Source views per object, and objects per training batch (pixelNeRF's SB)."""

    source_views: int = 1
    objects_per_batch: int = 2

    def __post_init__(self) -> None:
        if self.source_views < 1:
            raise ValueError(f"pixelnerf.source_views must be >= 1, got {self.source_views}")
        if self.objects_per_batch < 1:
            raise ValueError(
                f"pixelnerf.objects_per_batch must be >= 1, got {self.objects_per_batch}"
            )
