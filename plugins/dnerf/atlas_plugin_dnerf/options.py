"""The plugin's own options, set with ``--set dnerf.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Variant = Literal["mlp", "spline", "planes"]


@dataclass
class DNeRFOptions:
    """Deformation variant and its sizes; ``maps``: test views that get flow/rigidity maps."""

    deformation: Variant = "planes"
    width: int = 64
    depth: int = 3
    frequencies: int = 8
    time_frequencies: int = 6
    control_points: int = 4
    plane_resolutions: list[int] = field(default_factory=lambda: [32, 64])
    time_resolution: int = 24
    plane_features: int = 8
    plane_lr_scale: float = 5.0
    maps: int = 3

    def __post_init__(self) -> None:
        positive = {
            "width": self.width,
            "depth": self.depth,
            "time_resolution": self.time_resolution - 1,
            "plane_features": self.plane_features,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"dnerf.{name} is too small ({getattr(self, name)})")
        if self.control_points < 2:
            raise ValueError(f"dnerf.control_points must be >= 2, got {self.control_points}")
        if not self.plane_resolutions or min(self.plane_resolutions) < 2:
            raise ValueError("dnerf.plane_resolutions needs at least one resolution >= 2")
        if self.frequencies < 0 or self.time_frequencies < 0 or self.maps < 0:
            raise ValueError("dnerf.frequencies, time_frequencies and maps must be >= 0")
        if self.plane_lr_scale <= 0:
            raise ValueError("dnerf.plane_lr_scale must be > 0")
