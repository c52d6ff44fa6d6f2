"""The plugin's own options: ``--set relight.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Intersect = Literal["sphere", "bisection", "secant"]
LightKind = Literal["dataset", "point", "learned"]
Integrator = Literal["direct", "path"]
Shadow = Literal["none", "hard", "volume", "learned"]
Encoding = Literal["grid", "positional"]
Geometry = Literal["radiance", "neural"]
Warmup = Literal["falloff", "radiance"]
Tonemap = Literal["auto", "linear", "srgb"]
REFLECTANCES = ("diffuse", "blinn_phong", "ggx", "mlp", "sh", "fourier")


@dataclass(frozen=True)
class RelightOptions:
    """Surface intersection, reflectance mixture, light, integrator and shadow choices.

    ``reflectance``: names from REFLECTANCES mixed with ``weights`` (equal when empty);
    ``light``: ``dataset`` (each image's lights, from the nerv_point data), ``point``
    (fixed at ``light_position``) or ``learned`` (trainable position and intensity);
    ``light_intensity`` scales lights whose frames give no intensity; ``learn_gain``
    multiplies every light by a learned RGB gain (started at 1), since a dataset's light
    units are rarely the renderer's (a renderer without Lambert's 1/pi is off by pi).
    ``encoding``: the material head reads a dense feature grid (``grid_resolution``
    vertices along the box's longest side, ``grid_features`` channels) or the positional
    encoding of the point (``frequencies``). ``geometry`` (``relight_volume`` only): what
    the geometry learns from, a light-aware network of the material features, normal,
    light and view (``neural``) or the field's own radiance (``radiance``). ``warmup``
    (``relight_volume`` only): the colour of the field's density warm-up, its radiance
    times each image's inverse-square falloff relative to the scene's centre
    (``falloff``) or its radiance alone (``radiance``). ``tonemap``: how the images encode
    light, ``linear`` (as rendered) or ``srgb`` (the sRGB curve, as most 8-bit renders and
    photos store it): the renderers shade in linear light and encode before the losses;
    ``auto`` takes what the data declares (``tonemap.declared_encoding``), sRGB if nothing.
    ``shadow``: ``none``, ``hard`` (sphere-traced, binary), ``volume`` (traced, and the
    transmittance of the field's density along the way: shadows as wide as the volume
    rendered silhouettes; the default on the SDF grids) or ``learned`` (NeRV's network).
    """

    intersect: Intersect = "sphere"
    steps: int = 48
    reflectance: list[str] = field(default_factory=lambda: ["blinn_phong"])
    weights: list[float] = field(default_factory=list)
    light: LightKind = "dataset"
    light_position: list[float] = field(default_factory=lambda: [0.0, 0.0, 4.0])
    light_intensity: float = 1.0
    learn_gain: bool = True
    integrator: Integrator = "direct"
    shadow: Shadow = "hard"
    width: int = 64
    frequencies: int = 6
    encoding: Encoding = "grid"
    grid_resolution: int = 128
    grid_features: int = 8
    geometry: Geometry = "neural"
    warmup: Warmup = "falloff"
    sh_degree: int = 2
    fourier_terms: int = 4
    soft_alpha: float = 50.0
    tonemap: Tonemap = "auto"

    def __post_init__(self) -> None:
        unknown = [name for name in self.reflectance if name not in REFLECTANCES]
        if not self.reflectance or unknown:
            raise ValueError(
                f"reflectance must be a non-empty list of {', '.join(REFLECTANCES)}; "
                f"got {list(self.reflectance)}"
            )
        if self.weights and len(self.weights) != len(self.reflectance):
            raise ValueError(
                f"weights has {len(self.weights)} entries for {len(self.reflectance)} reflectances"
            )
        if any(w < 0 for w in self.weights) or (self.weights and sum(self.weights) <= 0):
            raise ValueError("weights must be >= 0 with a positive sum")
        if len(self.light_position) != 3:
            raise ValueError("light_position must be [x, y, z]")
        if self.light_intensity <= 0:
            raise ValueError("light_intensity must be > 0")
        if self.steps < 2 or self.width < 1 or self.frequencies < 0:
            raise ValueError("steps must be >= 2, width >= 1, frequencies >= 0")
        if not 0 <= self.sh_degree <= 2 or self.fourier_terms < 1:
            raise ValueError("sh_degree must be in 0..2 and fourier_terms >= 1")
        if self.encoding not in ("grid", "positional"):
            raise ValueError(f"encoding must be 'grid' or 'positional', got {self.encoding!r}")
        if self.geometry not in ("radiance", "neural"):
            raise ValueError(f"geometry must be 'radiance' or 'neural', got {self.geometry!r}")
        if self.warmup not in ("falloff", "radiance"):
            raise ValueError(f"warmup must be 'falloff' or 'radiance', got {self.warmup!r}")
        if self.grid_resolution < 2 or self.grid_features < 1:
            raise ValueError("grid_resolution must be >= 2 and grid_features >= 1")
        if self.soft_alpha <= 0:
            raise ValueError("soft_alpha must be > 0")

    def mixture_weights(self) -> list[float]:
        """The reflectance weights, normalised to sum to one."""
        weights = self.weights or [1.0] * len(self.reflectance)
        total = sum(weights)
        return [w / total for w in weights]
