"""The surface sampler, the mask loss and the nerv_point data kind meet the core's contracts.

The ``relight`` renderer shades surface points from the ``surface`` sampler, not
composited densities, so the RendererContract (random densities on stratified bins)
does not apply; the sampler contract runs it on the sampler's own samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from atlas_plugin_relight.synth import write_point_scene

from atlas_core.testing import DatasetContract, LossContract, SamplerContract

FIELD = {
    "field": "volsdf",
    "field.width": 16,
    "field.features": 8,
    "field.color_width": 8,
    "encoding.frequencies": 3,
}
SMALL = {**FIELD, "relight.width": 16, "relight.frequencies": 2, "relight.steps": 16}


class TestSurfaceSamplerContract(SamplerContract):
    name = "surface"
    plugins = ("volsdf", "relight")
    settings = SMALL


class TestRelightMaskLossContract(LossContract):
    name = "relight_mask"
    plugins = ("volsdf", "relight")
    settings = SMALL


class TestNervPointDatasetContract(DatasetContract):
    name = "nerv_point"
    plugins = ("relight",)
    options = {"downscale": 2}

    @pytest.fixture
    def contract_data(self, tmp_path: Path) -> Path:
        """A small generated point-light scene."""
        return write_point_scene(tmp_path / "scene", 8, {"train": 3, "test": 1})
