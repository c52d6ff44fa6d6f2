"""The three deformations: canonical frame at t = 0, shapes, basis, gradients."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_dnerf.deformation import PlanesDeformation, bernstein, make_deformation
from atlas_plugin_dnerf.options import DNeRFOptions

VARIANTS = ("mlp", "spline", "planes")


def randomise(module: torch.nn.Module) -> None:
    """Non-zero weights everywhere (the output layers start at zero)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.3 * torch.randn_like(param))


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_at_time_zero_and_moving_later(variant: str) -> None:
    deformation = make_deformation(1.5, DNeRFOptions(deformation=variant, width=16))
    x = torch.rand(64, 3) * 3 - 1.5
    start = deformation(x, torch.zeros(64, 1))["deformation"]
    assert torch.allclose(start, torch.zeros(64, 3))  # zero-initialised output layers too
    randomise(deformation)
    assert torch.equal(deformation(x, torch.zeros(64, 1))["deformation"], torch.zeros(64, 3))
    later = deformation(x, torch.full((64, 1), 0.7))["deformation"]
    assert later.shape == (64, 3) and later.abs().mean() > 1e-3


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_parameter(variant: str) -> None:
    deformation = make_deformation(1.5, DNeRFOptions(deformation=variant, width=16))
    randomise(deformation)
    out = deformation(torch.rand(128, 3) - 0.5, torch.rand(128, 1))
    out["deformation"].square().sum().backward()
    for name, param in deformation.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_bernstein_basis_sums_to_one_and_hits_end_points() -> None:
    t = torch.linspace(0, 1, 11)[:, None]
    basis = bernstein(t, 3)
    assert torch.allclose(basis.sum(-1), torch.ones(11))
    assert torch.allclose(basis[0], torch.tensor([1.0, 0, 0, 0]))
    assert torch.allclose(basis[-1], torch.tensor([0.0, 0, 0, 1]))


def test_spline_moves_to_its_last_control_point_scaled_by_rigidity() -> None:
    deformation = make_deformation(1.5, DNeRFOptions(deformation="spline", control_points=5))
    randomise(deformation)
    x = torch.rand(32, 3)
    out = deformation(x, torch.ones(32, 1))
    points, rigidity = out["control_points"], out["rigidity"]
    assert points.shape == (32, 5, 3) and torch.equal(points[:, 0], torch.zeros(32, 3))
    assert ((rigidity > 0) & (rigidity < 1)).all()
    assert torch.allclose(out["deformation"], rigidity * points[:, -1], atol=1e-6)


def test_planes_interpolate_bilinearly_at_several_resolutions() -> None:
    options = DNeRFOptions(plane_resolutions=[2, 3], time_resolution=2, plane_features=1)
    deformation = PlanesDeformation(1.0, options)
    with torch.no_grad():
        for plane in deformation.planes:
            plane.fill_(1.0)
        # plane xt of the 2-wide level: value = 1 + (space coordinate index)
        deformation.planes[0][0, 0] = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    x = torch.tensor([[0.0, 0.3, -0.2], [0.5, 0.9, 0.1]])
    features = deformation.features(x, torch.tensor([[0.25], [0.5]]))
    assert features.shape == (2, 2)
    assert torch.allclose(features[:, 0], torch.tensor([1.5, 1.75]))  # linear in x
    assert torch.allclose(features[:, 1], torch.ones(2))


def test_bad_options_are_value_errors() -> None:
    with pytest.raises(ValueError, match="control_points"):
        DNeRFOptions(control_points=1)
    with pytest.raises(ValueError, match="plane_resolutions"):
        DNeRFOptions(plane_resolutions=[])
    with pytest.raises(ValueError, match="plane_lr_scale"):
        DNeRFOptions(plane_lr_scale=0.0)
