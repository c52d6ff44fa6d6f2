"""SIREN layers, encoding and field: initialisation, activation statistics, contracts."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_siren import SineLayer, SirenEncoding

from atlas_core.testing import EncodingContract, FieldContract, SamplerContract


class TestSirenEncodingContract(EncodingContract):
    name = "siren"
    plugins = ("siren",)
    options = {"features": 16, "w0": 10.0}


class TestSirenFieldContract(FieldContract):
    name = "siren"
    plugins = ("siren",)
    options = {"width": 16, "depth": 2}
    settings = {"encoding.features": 16, "sampler.samples": 8}


class TestSirenFieldOccupancyContract(SamplerContract):
    """The siren field answers density() queries, so the occupancy grid can use it."""

    name = "occupancy"
    plugins = ("siren",)
    options = {"resolution": 8}
    settings = {"field": "siren", "field.width": 16, "encoding.features": 16}


def test_initialisation_bounds() -> None:
    first = SineLayer(3, 64, w0=30.0, first=True)
    assert first.linear.weight.abs().max().item() <= 1 / 3
    hidden = SineLayer(64, 64, w0=30.0)
    bound = math.sqrt(6 / 64) / 30
    assert hidden.linear.weight.abs().max().item() <= bound
    assert hidden.linear.weight.abs().max().item() > 0.9 * bound  # uniform, filling the range


def test_activations_keep_their_distribution_through_depth() -> None:
    """Sitzmann et al. 2020, sec. 3.2: every layer's output is arcsine-like, std 1/sqrt(2)."""
    torch.manual_seed(0)
    x = torch.rand(4096, 3) * 2 - 1
    h = SirenEncoding(3, features=256)(x)
    for _ in range(4):
        assert h.std().item() == pytest.approx(1 / math.sqrt(2), abs=0.06)
        assert h.abs().max().item() <= 1.0
        h = SineLayer(256, 256)(h)


def test_w0_scales_the_frequencies() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 2001)[:, None].expand(-1, 3).contiguous()
    crossings = []
    for w0 in (5.0, 40.0):
        torch.manual_seed(0)
        out = SirenEncoding(3, features=32, w0=w0)(x)
        crossings.append(int((out[1:] * out[:-1] < 0).sum()))
    assert crossings[1] > 4 * crossings[0]


@pytest.mark.parametrize(
    ("options", "message"), [({"features": 0}, "features"), ({"w0": 0.0}, "w0")]
)
def test_bad_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SirenEncoding(3, **options)
