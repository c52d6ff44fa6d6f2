"""Point lights: fixed, learned, or each image's own (NeRV, Srinivasan et al. 2021, sec. 4)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from atlas_core.api import RayBundle, tag_parameter
from atlas_plugin_relight.options import RelightOptions

POSITIONS, POWER, SCALED = "light_positions", "light_power", "light_scaled"
GAIN_LR_SCALE = 10.0  # one number per channel: let it settle within the first hundred steps


class PointLight(nn.Module):
    """One light at a fixed position with a fixed scalar intensity."""

    def __init__(self, position: list[float], intensity: float):
        super().__init__()
        self.register_buffer("position", torch.tensor(position, dtype=torch.float32))
        self.intensity = intensity

    def forward(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Positions [R, 1, 3] and RGB power [R, 1, 3]."""
        count = len(rays)
        position = self.position.expand(count, 1, 3)
        return position, rays.origins.new_full((count, 1, 3), self.intensity)


class LearnedLight(nn.Module):
    """One light whose position and RGB intensity are trained (log-parametrised power)."""

    def __init__(self, position: list[float], intensity: float):
        super().__init__()
        self.position = nn.Parameter(torch.tensor(position, dtype=torch.float32))
        self.log_power = nn.Parameter(torch.full((3,), math.log(intensity)))

    def forward(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Positions [R, 1, 3] and RGB power [R, 1, 3]."""
        count = len(rays)
        power = self.log_power.exp().expand(count, 1, 3)
        return self.position.expand(count, 1, 3), power


class DatasetLight(nn.Module):
    """Each ray's lights from its image (``rays.extras``), as the nerv_point data gives them.

    Frames without an intensity are scaled by ``intensity``; rays without lights (a free
    camera, e.g. the turntable video) get a light at the camera centre (collocated).
    """

    def __init__(self, intensity: float):
        super().__init__()
        self.intensity = intensity

    def forward(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Positions [R, L, 3] and RGB power [R, L, 3]."""
        extras = rays.extras
        if POSITIONS not in extras:
            count = len(rays)
            return rays.origins[:, None, :], rays.origins.new_full((count, 1, 3), self.intensity)
        scale = torch.where(extras[SCALED] > 0, 1.0, self.intensity)
        return extras[POSITIONS], extras[POWER] * scale[:, None, None]


class LightGain(nn.Module):
    """A learned RGB gain on every light's power (log-parametrised, started at 1): light
    units differ between renderers (one without Lambert's 1/pi is off by pi)."""

    def __init__(self, learn: bool = True):
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(3), requires_grad=learn)
        tag_parameter(self.log_gain, lr_scale=GAIN_LR_SCALE)

    def forward(self, power: Tensor) -> Tensor:
        """``power`` [..., 3] times the gain."""
        return power * self.log_gain.exp()


def make_light(options: RelightOptions) -> nn.Module:
    """The light the options choose."""
    if options.light == "point":
        return PointLight(options.light_position, options.light_intensity)
    if options.light == "learned":
        return LearnedLight(options.light_position, options.light_intensity)
    return DatasetLight(options.light_intensity)


def incident(x: Tensor, positions: Tensor, power: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Unit directions to the lights [R, L, 3], distances [R, L, 1] and incident radiance
    ``power / d^2`` [R, L, 3] at points ``x`` [R, 3] (inverse-square falloff)."""
    offset = positions - x[:, None, :]
    dist = offset.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return offset / dist, dist, power / dist**2
