"""FusedMLP: the hand-written backward matches autograd through nn layers."""

from __future__ import annotations

import pytest
import torch
from atlas_plugin_ngp.mlp import FusedMLP
from torch import nn


def reference(fused: FusedMLP) -> nn.Sequential:
    """The same layers as an nn.Sequential with ReLUs (sharing the parameters)."""
    modules: list[nn.Module] = []
    for layer in fused.layers:
        modules += [layer, nn.ReLU()]
    return nn.Sequential(*modules[:-1])


def test_matches_autograd_values_and_gradients() -> None:
    torch.manual_seed(0)
    fused = FusedMLP(7, 16, 2, 5).double()
    x = torch.randn(300, 7, dtype=torch.float64, requires_grad=True)
    target = torch.randn(300, 5, dtype=torch.float64)
    results = []
    for model in (fused, reference(fused)):
        fused.zero_grad()
        x.grad = None
        out = model(x)
        (out * target).sum().backward()
        results.append((out.detach(), x.grad.clone(), [p.grad.clone() for p in fused.parameters()]))
    (a, ax, ap), (b, bx, bp) = results
    assert torch.allclose(a, b) and torch.allclose(ax, bx)
    assert all(torch.allclose(p, q) for p, q in zip(ap, bp, strict=True))


def test_bfloat16_is_close_and_keeps_float32_parameters() -> None:
    torch.manual_seed(1)
    exact = FusedMLP(31, 64, 2, 3)
    fast = FusedMLP(31, 64, 2, 3, precision="bfloat16")
    fast.load_state_dict(exact.state_dict())
    x = torch.randn(2000, 31)
    out = fast(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, exact(x), atol=0.05)
    out.square().mean().backward()
    grad = fast.layers[0].weight.grad
    assert grad.dtype == torch.float32 and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_no_input_gradient_unless_asked() -> None:
    fused = FusedMLP(4, 8, 1, 2)
    x = torch.randn(10, 4)
    fused(x).sum().backward()
    assert x.grad is None and fused.layers[1].weight.grad is not None


def test_bad_precision_raises() -> None:
    with pytest.raises(ValueError, match="precision"):
        FusedMLP(4, 8, 1, 2, precision="float16")
