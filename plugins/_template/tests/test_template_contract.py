"""The template's encoding meets the encoding contract (rename this file when copying)."""

from __future__ import annotations

import torch
from atlas_plugin_template import ScaledEncoding

from atlas_core.testing import EncodingContract


class TestScaledEncodingContract(EncodingContract):
    name = "template_scaled"
    plugins = ("template",)
    options = {"scale": 2.0}


def test_scales_its_input() -> None:
    x = torch.randn(5, 3)
    assert torch.equal(ScaledEncoding(3, scale=-0.5)(x), -0.5 * x)
