"""Motion regularisers: values on known motions, gradients, start-up checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_dnerf.deformation import Deformation, make_deformation
from atlas_plugin_dnerf.field import DeformedField
from atlas_plugin_dnerf.losses import (
    DisplacementLoss,
    DivergenceLoss,
    RigidityLoss,
    SplineLengthLoss,
    divergence,
)
from atlas_plugin_dnerf.options import DNeRFOptions
from torch import Tensor, nn


class LinearMotion(Deformation):
    """dx = t * (A x + b): divergence t * trace(A)."""

    def __init__(self, matrix: Tensor, shift: Tensor):
        super().__init__(1.0)
        self.matrix = nn.Parameter(matrix)
        self.shift = nn.Parameter(shift)

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        return {"deformation": t * (x @ self.matrix.T + self.shift)}


def context_for(deformation: nn.Module) -> SimpleNamespace:
    """A stand-in BuildContext whose field is a deformed field."""
    field = DeformedField(nn.Identity(), deformation)
    return SimpleNamespace(field_module=lambda: field)


def test_displacement_is_mean_squared_length() -> None:
    loss = DisplacementLoss(context_for(LinearMotion(torch.zeros(3, 3), torch.zeros(3))))
    dx = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    value = loss(None, {}, {"deformation": dx})
    assert float(value.detach()) == pytest.approx((25 + 1) / 2)
    value.backward()
    assert torch.allclose(dx.grad, dx.detach())  # d/dx of mean |dx|^2 over 2 samples


def test_divergence_of_a_linear_motion() -> None:
    matrix = torch.tensor([[0.5, 0.2, 0.0], [0.1, -0.3, 0.4], [0.0, 0.7, 0.2]])
    motion = LinearMotion(matrix, torch.tensor([0.1, 0.2, 0.3]))
    positions, times = torch.rand(50, 3), torch.rand(50, 1)
    div = divergence(motion, positions, times, 0.01)
    assert torch.allclose(div, times[:, 0] * 0.4, atol=1e-5)  # t * trace(A)
    loss = DivergenceLoss(context_for(motion))
    outputs = {"sample_positions": positions, "sample_times": times}
    value = loss(None, {}, outputs)
    assert float(value.detach()) == pytest.approx(float((0.16 * times.square()).mean()), rel=1e-4)
    value.backward()
    assert torch.allclose(motion.matrix.grad.diagonal().diff(), torch.zeros(2), atol=1e-4)
    assert motion.matrix.grad.diagonal().abs().min() > 0
    assert motion.shift.grad.abs().max() < 1e-5  # a constant shift has no divergence


def test_divergence_uses_a_subset_of_many_samples() -> None:
    motion = LinearMotion(torch.eye(3), torch.zeros(3))
    loss = DivergenceLoss(context_for(motion))
    outputs = {"sample_positions": torch.rand(5000, 3), "sample_times": torch.ones(5000, 1)}
    assert float(loss(None, {}, outputs).detach()) == pytest.approx(9.0, rel=1e-4)


def spline_context() -> SimpleNamespace:
    return context_for(make_deformation(1.0, DNeRFOptions(deformation="spline")))


def test_spline_length_is_the_control_polygon_length() -> None:
    points = torch.zeros(2, 4, 3)
    points[0, 1:, 0] = torch.tensor([1.0, 1.0, 4.0])  # 1 + 0 + 3
    points[1, 1:] = torch.tensor([[0.0, 3.0, 4.0]] * 3)  # 5 + 0 + 0
    points.requires_grad_()
    value = SplineLengthLoss(spline_context())(None, {}, {"control_points": points})
    assert float(value.detach()) == pytest.approx(4.5)
    value.backward()
    assert torch.isfinite(points.grad).all() and points.grad.abs().sum() > 0


def test_spline_length_gradient_is_finite_at_the_zero_start() -> None:
    deformation = make_deformation(1.0, DNeRFOptions(deformation="spline", width=8))
    out = deformation(torch.rand(16, 3), torch.rand(16, 1))
    SplineLengthLoss(context_for(deformation))(None, {}, out).backward()
    assert all(torch.isfinite(p.grad).all() for p in deformation.parameters())


def test_rigidity_is_its_mean_and_pulls_it_down() -> None:
    raw = torch.zeros(4, 1, requires_grad=True)
    rigidity = torch.sigmoid(raw + torch.tensor([[0.0], [1.0], [-1.0], [2.0]]))
    value = RigidityLoss(spline_context())(None, {}, {"rigidity": rigidity})
    assert float(value.detach()) == pytest.approx(float(rigidity.detach().mean()))
    value.backward()
    assert (raw.grad > 0).all()  # gradient descent lowers every rigidity


def test_losses_need_the_deformed_field_at_start_up() -> None:
    plain = SimpleNamespace(field_module=lambda: nn.Sequential(nn.Linear(3, 4)))
    with pytest.raises(ValueError, match="add dnerf to --plugins"):
        DisplacementLoss(plain)
    planes = context_for(make_deformation(1.0, DNeRFOptions(deformation="planes")))
    with pytest.raises(ValueError, match="dnerf.deformation=spline"):
        RigidityLoss(planes)
    with pytest.raises(ValueError, match="dnerf.deformation=spline"):
        SplineLengthLoss(planes)
    DivergenceLoss(planes)  # any variant
