"""The plugin's own options, set with ``--set appearance.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["AppearanceOptions", "EvalMode"]

EvalMode = Literal["mean", "identity"]


@dataclass
class AppearanceOptions:
    """Code size, held-out views' correction, code L2 weight and table capacity."""

    dim: int = 16
    eval: EvalMode = "mean"
    l2: float = 0.0
    hidden: int = 32
    max_images: int = 4096
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"appearance.dim must be >= 1, got {self.dim}")
        if self.hidden < 0:
            raise ValueError(f"appearance.hidden must be >= 0, got {self.hidden}")
        if self.l2 < 0:
            raise ValueError(f"appearance.l2 must be >= 0, got {self.l2}")
        if not self.lr_scale > 0:
            raise ValueError(f"appearance.lr_scale must be > 0, got {self.lr_scale}")
        if self.max_images < 1:
            raise ValueError(f"appearance.max_images must be >= 1, got {self.max_images}")
