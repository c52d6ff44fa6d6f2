"""Fixtures of the rig plugin's tests: fields built directly and samples along rays."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from atlas_plugin_rig import RigField

from atlas_core.api import BuildContext, RayBundle, RaySamples, RunConfig, SceneData

BOUNDS = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
SMALL = {"points": 512, "features": 4, "neighbours": 4, "width": 16}


@pytest.fixture
def make_rig() -> Callable[..., RigField]:
    """Factory: ``make_rig(bounds=..., seed=0, **options)``, small options by default."""

    def make(bounds: tuple[float, ...] = BOUNDS, seed: int = 0, **options: object) -> RigField:
        config = RunConfig()
        config.seed = seed
        context = BuildContext(config, None, SceneData({}, bounds=bounds))
        return RigField(context, **{**SMALL, **options})

    return make


@pytest.fixture
def ray_samples() -> Callable[..., RaySamples]:
    """Factory: ``ray_samples(count, rays, seed)``, samples on rays crossing [-1, 1]^3."""

    def make(count: int = 256, rays: int = 16, seed: int = 0) -> RaySamples:
        generator = torch.Generator().manual_seed(seed)
        origins = torch.nn.functional.normalize(torch.randn(rays, 3, generator=generator), dim=-1)
        origins = origins * 3.0
        aim = 0.5 * (torch.rand(rays, 3, generator=generator) - 0.5)
        directions = torch.nn.functional.normalize(aim - origins, dim=-1)
        ones = torch.ones(rays, 1)
        bundle = RayBundle(origins, directions, ones * 2.0, ones * 4.0, ones * 1e-3,
                           torch.arange(rays))  # fmt: skip
        per_ray = count // rays
        t = torch.linspace(2.0, 4.0, per_ray + 1)
        starts = t[:-1].repeat(rays)[:, None]
        ends = t[1:].repeat(rays)[:, None]
        indices = torch.arange(rays).repeat_interleave(per_ray)
        return RaySamples(bundle, starts, ends, indices)

    return make
