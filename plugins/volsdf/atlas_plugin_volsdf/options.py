"""The plugin's own options: ``--set volsdf.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VolSDFOptions:
    """``eikonal_points``: uniform random points in the scene box added to the eikonal
    term each training step (VolSDF samples them besides the ray samples); 0: none.
    ``normal_smoothness_until``: the step by which the ``normal_smoothness`` term's weight
    has fallen linearly to zero (a coarse-to-fine regulariser, as Neuralangelo decays its
    curvature term); 0: the weight stays as set."""

    eikonal_points: int = 0
    normal_smoothness_until: int = 0

    def __post_init__(self) -> None:
        if self.eikonal_points < 0:
            raise ValueError(f"eikonal_points must be >= 0, got {self.eikonal_points}")
        if self.normal_smoothness_until < 0:
            raise ValueError(
                f"normal_smoothness_until must be >= 0, got {self.normal_smoothness_until}"
            )
