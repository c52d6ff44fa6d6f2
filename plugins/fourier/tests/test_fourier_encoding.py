"""The Fourier feature encoding: formula, spectrum, annealing window, contract."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_fourier import FourierEncoding

from atlas_core.testing import EncodingContract


class TestFourierContract(EncodingContract):
    name = "fourier"
    plugins = ("fourier",)
    options = {"features": 16, "sigma": 2.0, "anneal_steps": 5}


class TestFourierNoInputContract(EncodingContract):
    name = "fourier"
    plugins = ("fourier",)
    options = {"features": 8, "include_input": False}
    in_dim = 2


def test_features_follow_the_paper_formula() -> None:
    torch.manual_seed(0)
    encoding = FourierEncoding(3, features=5, sigma=3.0)
    x = torch.randn(7, 3)
    projected = 2.0 * math.pi * (x @ encoding.matrix.T)
    expected = torch.cat([x, torch.cos(projected), torch.sin(projected)], dim=-1)
    assert encoding.out_dim == 3 + 2 * 5
    assert torch.allclose(encoding(x), expected, atol=1e-5)


def test_sigma_sets_the_spread_of_frequencies() -> None:
    torch.manual_seed(0)
    for sigma in (0.5, 8.0):
        matrix = FourierEncoding(3, features=4000, sigma=sigma).matrix
        assert matrix.std().item() == pytest.approx(sigma, rel=0.05)
    norms = FourierEncoding(3, features=64).matrix.norm(dim=1)
    assert bool((norms[1:] >= norms[:-1]).all())  # sorted low to high


def test_include_input_false_drops_the_coordinates() -> None:
    encoding = FourierEncoding(2, features=4, include_input=False)
    out = encoding(torch.zeros(3, 2))
    assert out.shape == (3, 8) and encoding.out_dim == 8
    assert torch.equal(out, torch.cat([torch.ones(3, 4), torch.zeros(3, 4)], dim=-1))


def test_annealing_opens_low_frequencies_first() -> None:
    encoding = FourierEncoding(3, features=8, anneal_steps=100)
    assert torch.equal(encoding.window(), torch.zeros(8))
    encoding.set_step(50)  # alpha = 4: four rows open, the rest closed
    assert torch.equal(encoding.window(), torch.tensor([1.0] * 4 + [0.0] * 4))
    encoding.set_step(56)  # alpha = 4.48: the fifth row half open
    window = encoding.window()
    assert 0.0 < window[4].item() < 1.0 and window[5].item() == 0.0
    encoding.set_step(500)
    assert torch.equal(encoding.window(), torch.ones(8))
    assert torch.equal(FourierEncoding(3, features=8).window(), torch.ones(8))


def test_annealing_step_is_saved_with_the_model() -> None:
    encoding = FourierEncoding(3, features=4, anneal_steps=10)
    encoding.set_step(7)
    restored = FourierEncoding(3, features=4, anneal_steps=10)
    restored.load_state_dict(encoding.state_dict())
    assert int(restored.step) == 7 and torch.equal(restored.matrix, encoding.matrix)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"features": 0}, "features"),
        ({"sigma": 0.0}, "sigma"),
        ({"anneal_steps": -1}, "anneal_steps"),
    ],
)
def test_bad_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FourierEncoding(3, **options)
