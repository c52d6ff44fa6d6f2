"""Colour spaces, the sRGB curve, tone mapping and gamma for colour losses; rgb_rmse."""

from __future__ import annotations

import colorsys

import pytest
import torch

from atlas_core.config import RunConfig
from atlas_core.nerf.colour import (
    LossColour,
    linear_to_srgb,
    luminance,
    rgb_to_hsv,
    rgb_to_xyz,
    srgb_to_linear,
)
from atlas_core.nerf.losses import RGBL2Loss, RGBRMSELoss
from atlas_core.nerf.rays import RayBundle


def test_hsv_matches_colorsys_on_random_colours() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(500, 3, dtype=torch.float64)
    rgb[:5] = torch.tensor([[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 0, 1.0]])
    expected = torch.tensor([colorsys.rgb_to_hsv(*c) for c in rgb.tolist()], dtype=torch.float64)
    assert torch.allclose(rgb_to_hsv(rgb), expected, atol=1e-12)


def test_xyz_uses_the_srgb_d65_matrix() -> None:
    white = rgb_to_xyz(torch.ones(1, 3, dtype=torch.float64))[0]
    assert torch.allclose(white, torch.tensor([0.9505, 1.0, 1.089], dtype=torch.float64), atol=1e-3)
    red = rgb_to_xyz(torch.tensor([[1.0, 0.0, 0.0]]))[0]
    assert torch.allclose(red, torch.tensor([0.4124, 0.2126, 0.0193]), atol=1e-4)
    colours = torch.rand(20, 3)
    assert torch.allclose(luminance(colours)[:, 0], rgb_to_xyz(colours)[:, 1], atol=1e-6)


def test_srgb_is_the_standard_curve_with_a_finite_slope_at_black() -> None:
    x = torch.tensor([0.0, 0.002, 0.0031308, 0.18, 0.5, 1.0], requires_grad=True)
    y = linear_to_srgb(x)
    expected = [0.0, 12.92 * 0.002, 0.040449936, 0.461356, 0.735357, 1.0]
    assert y.tolist() == pytest.approx(expected, abs=1e-5)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert bool(torch.isfinite(slope).all()) and float(slope[0]) == pytest.approx(12.92)
    assert float(linear_to_srgb(torch.tensor(-0.5))) == 0.0


def test_srgb_to_linear_inverts_the_curve_with_slope_one_over_12_92_at_black() -> None:
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-12)
    encoded = torch.tensor([0.0, 0.02, 0.5, 1.0], requires_grad=True)
    decoded = srgb_to_linear(encoded)
    assert decoded.tolist() == pytest.approx([0.0, 0.02 / 12.92, 0.214041, 1.0], abs=1e-6)
    (slope,) = torch.autograd.grad(decoded.sum(), encoded)
    assert float(slope[0]) == pytest.approx(1 / 12.92) and bool(torch.isfinite(slope).all())
    assert float(srgb_to_linear(torch.tensor(-0.2))) == 0.0


def test_tone_map_and_gamma_order() -> None:
    x = torch.tensor([[0.0, 1.0, 3.0]])
    assert torch.allclose(LossColour(tone_map=True)(x), torch.tensor([[0.0, 0.5, 0.75]]))
    y = LossColour(tone_map=True, gamma=2.0)(x)
    assert torch.allclose(y[0, 1:], torch.tensor([0.5, 0.75]).sqrt())
    assert LossColour().identity and not LossColour(gamma=2.2).identity
    assert not LossColour(linear=True).identity
    z = torch.tensor([[0.2, 0.5, 1.0]])
    assert torch.allclose(
        LossColour(linear=True, tone_map=True)(z), srgb_to_linear(z) / (1 + srgb_to_linear(z))
    )
    assert LossColour(space="luminance")(torch.rand(7, 3)).shape == (7, 1)


class Context:
    """What a loss factory reads from the build context: the config."""

    def __init__(self, **train: object) -> None:
        self.config = RunConfig()
        for key, value in train.items():
            self.config.set(f"train.{key}", value)


def rays(count: int) -> RayBundle:
    zeros = torch.zeros(count, 3)
    ones = torch.ones(count, 1)
    return RayBundle(zeros, zeros, ones, ones, ones, torch.zeros(count, dtype=torch.long))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, lambda p, t: (p - t).square().mean()),
        ({"loss_space": "hsv"}, lambda p, t: (rgb_to_hsv(p) - rgb_to_hsv(t)).square().mean()),
        ({"loss_space": "xyz"}, lambda p, t: (rgb_to_xyz(p) - rgb_to_xyz(t)).square().mean()),
        ({"loss_space": "luminance"}, lambda p, t: (luminance(p) - luminance(t)).square().mean()),
        ({"tone_map": True}, lambda p, t: (p / (1 + p) - t / (1 + t)).square().mean()),
        ({"loss_gamma": 2.0}, lambda p, t: (p.sqrt() - t.sqrt()).square().mean()),
        (
            {"loss_linear": True},
            lambda p, t: (srgb_to_linear(p) - srgb_to_linear(t)).square().mean(),
        ),
    ],
)
def test_loss_is_computed_in_the_chosen_space(settings: dict, expected: object) -> None:
    torch.manual_seed(1)
    prediction, target = torch.rand(64, 3) + 0.01, torch.rand(64, 3) + 0.01
    loss = RGBL2Loss(Context(**settings))
    value = loss(rays(64), {"rgb": prediction, "target_rgb": target}, {})
    assert torch.allclose(value, expected(prediction, target), atol=1e-6)
    if settings:  # each option changes the value
        plain = RGBL2Loss()(rays(64), {"rgb": prediction, "target_rgb": target}, {})
        assert not torch.allclose(value, plain)


def test_rmse_is_root_of_mse_with_coarse_term_and_finite_gradient() -> None:
    prediction = torch.rand(32, 3, requires_grad=True)
    target = torch.rand(32, 3)
    outputs = {"rgb": prediction, "coarse_rgb": prediction * 0.5, "target_rgb": target}
    value = RGBRMSELoss()(rays(32), outputs, {})
    mse = (prediction - target).square().mean() + (prediction * 0.5 - target).square().mean()
    expected = (prediction - target).square().mean().sqrt()
    expected = expected + (prediction * 0.5 - target).square().mean().sqrt()
    assert torch.allclose(value, expected) and not torch.allclose(value, mse)
    same = RGBRMSELoss()(rays(32), {"rgb": prediction, "target_rgb": prediction.detach()}, {})
    same.backward()
    assert float(same.detach()) < 1e-5 and torch.isfinite(prediction.grad).all()


def test_coarse_weight_scales_the_coarse_term() -> None:
    prediction, coarse, target = torch.rand(16, 3), torch.rand(16, 3), torch.rand(16, 3)
    outputs = {"rgb": prediction, "coarse_rgb": coarse, "target_rgb": target}
    fine = (prediction - target).square().mean()
    extra = (coarse - target).square().mean()
    assert torch.allclose(RGBL2Loss(Context())(rays(16), outputs, {}), fine + extra)
    weighted = RGBL2Loss(Context(coarse_weight=0.1))(rays(16), outputs, {})
    assert torch.allclose(weighted, fine + 0.1 * extra)
    assert torch.allclose(RGBL2Loss(Context(coarse_weight=0.0))(rays(16), outputs, {}), fine)


def test_bad_colour_options_are_config_errors() -> None:
    from atlas_core.errors import ConfigError

    with pytest.raises(ConfigError, match="loss_space"):
        RunConfig().set("train.loss_space", "lab")
    with pytest.raises(ConfigError, match="loss_gamma must be >= 0.01"):
        RunConfig().set("train.loss_gamma", 0.0)
