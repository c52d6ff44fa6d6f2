"""The mip components meet the core's contracts (cones and cylinders)."""

from __future__ import annotations

from atlas_core.testing import EncodingContract, SamplerContract


class TestIPEContract(EncodingContract):
    name = "ipe"
    plugins = ("mip",)
    options = {"frequencies": 4}


class TestIPECylinderContract(EncodingContract):
    name = "ipe"
    plugins = ("mip",)
    options = {"frequencies": 4, "include_input": False}
    settings = {"mip.shape": "cylinder"}


class TestMipSamplerContract(SamplerContract):
    name = "mip"
    plugins = ("mip",)
    options = {"samples": 8, "padding": 0.05}
    settings = {"field.width": 16}
