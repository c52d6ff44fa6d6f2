"""The plugin's own options, set with ``--set camopt.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CamOptOptions"]


@dataclass
class CamOptOptions:
    """Learning rate of the pose corrections (0 freezes them), their L2 weight, capacity."""

    lr: float = 1e-3
    l2: float = 0.0
    max_images: int = 4096

    def __post_init__(self) -> None:
        if not self.lr >= 0:
            raise ValueError(f"camopt.lr must be >= 0, got {self.lr}")
        if not self.l2 >= 0:
            raise ValueError(f"camopt.l2 must be >= 0, got {self.l2}")
        if self.max_images < 1:
            raise ValueError(f"camopt.max_images must be >= 1, got {self.max_images}")
