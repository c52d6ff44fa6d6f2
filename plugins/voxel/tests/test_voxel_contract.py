"""The voxel field and its TV losses meet the core's component contracts."""

from __future__ import annotations

import torch
from torch import nn

from atlas_core.api import BuildContext
from atlas_core.testing import FieldContract, LossContract

SMALL = {"field.resolution": 16, "field.initial_resolution": 8, "field.width": 16}


class TestVoxelFieldContract(FieldContract):
    name = "voxel"
    plugins = ("voxel",)
    options = {"resolution": 16, "initial_resolution": 8, "width": 16, "features": 4}
    settings = {"sampler.resolution": 8}


class TestVoxelSHFieldContract(FieldContract):
    name = "voxel"
    plugins = ("voxel",)
    options = {"resolution": 12, "initial_resolution": 12, "color": "sh"}
    settings = {"sampler.resolution": 8}


class VoxelTVContract(LossContract):
    """TV on grids made uneven (fresh grids are constant, with zero TV gradient)."""

    plugins = ("voxel",)
    weight = 1e-4
    calls = 4  # the TV gradient flows on every 4th call (the losses' ``every``)
    settings = {**SMALL, "sampler.resolution": 8}

    def build(self, context: BuildContext) -> nn.Module:
        """The run's pipeline with noise on the field's grids, as after some training."""
        pipeline = super().build(context)
        with torch.no_grad():
            for param in pipeline.field.parameters():
                param.add_(0.01 * torch.randn_like(param))
        return pipeline


class TestDensityTVContract(VoxelTVContract):
    name = "tv_density"


class TestColorTVContract(VoxelTVContract):
    name = "tv_color"
