"""The nerfae components meet the core's contracts."""

from __future__ import annotations

from atlas_core.testing import FieldContract, LossContract


class TestNeRFAEFieldContract(FieldContract):
    name = "nerfae"
    plugins = ("nerfae",)
    options = {"latent_size": 8, "width": 16, "decoder_width": 16, "normalization": "layer"}
    settings = {"sampler.samples": 8}


class TestLatentL2Contract(LossContract):
    name = "latent_l2"
    plugins = ("nerfae",)
    weight = 0.01
    settings = {"field.width": 16, "sampler.samples": 8}
