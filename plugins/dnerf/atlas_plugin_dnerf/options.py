"""The plugin's own options, set with ``--set dnerf.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Variant = Literal["mlp", "spline", "planes", "none"]
Canonical = Literal["t0", "learned"]


@dataclass
class DNeRFOptions:
    """Deformation variant and its sizes; ``maps``: test views that get flow/rigidity maps.

    ``canonical``: ``t0`` (dx = 0 at t = 0, D-NeRF) or ``learned`` (no such constraint:
    the canonical frame is whatever the fit finds); ``deformation_scale``: factor on the
    deformation network's output (its reach per step of the optimiser);
    ``anneal_steps``: steps over which the finer frequencies (mlp) or finer plane scales
    (planes) are faded in, coarse to fine (Nerfies, Park et al. 2021, sec. 3.5); 0 = off;
    ``occupancy_times``: an occupancy grid's refresh reads the deformed density at this
    many stratified times and keeps the maximum (1: one random time per cell).
    """

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
    canonical: Canonical = "t0"
    deformation_scale: float = 1.0
    anneal_steps: int = 0
    occupancy_times: int = 1

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
        if self.occupancy_times < 1:
            raise ValueError("dnerf.occupancy_times must be >= 1")
        if self.deformation_scale <= 0 or self.anneal_steps < 0:
            raise ValueError("dnerf.deformation_scale must be > 0 and anneal_steps >= 0")
        if self.plane_lr_scale <= 0:
            raise ValueError("dnerf.plane_lr_scale must be > 0")
