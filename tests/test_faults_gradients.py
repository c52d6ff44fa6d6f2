"""finite_gradients: dense and sparse row gradients, NaN/Inf, empty and missing ones."""

from __future__ import annotations

import torch

from atlas_core.engine.faults import finite_gradients


def param_with(grad: torch.Tensor | None, shape: tuple[int, ...] = (6, 2)) -> torch.nn.Parameter:
    """A parameter holding ``grad`` as its gradient."""
    param = torch.nn.Parameter(torch.zeros(shape))
    param.grad = grad
    return param


def sparse_rows(index: list[int], values: torch.Tensor) -> torch.Tensor:
    """A sparse row gradient of a [6, 2] parameter (rows may repeat: uncoalesced)."""
    rows = torch.tensor([index], dtype=torch.long)
    return torch.sparse_coo_tensor(rows, values, (6, 2), check_invariants=True)


def test_dense_gradients() -> None:
    assert finite_gradients([param_with(torch.ones(6, 2)), param_with(None)])
    assert finite_gradients([param_with(None)]) and finite_gradients([])
    bad = torch.ones(6, 2)
    bad[3, 1] = float("nan")
    assert not finite_gradients([param_with(torch.ones(6, 2)), param_with(bad)])
    bad[3, 1] = float("-inf")
    assert not finite_gradients([param_with(bad)])


def test_sparse_gradient_with_nan_or_inf_values_is_not_finite() -> None:
    values = torch.ones(3, 2)
    values[1, 0] = float("nan")
    assert not finite_gradients([param_with(sparse_rows([4, 1, 4], values))])
    values[1, 0] = float("inf")
    assert not finite_gradients([param_with(sparse_rows([4, 1, 4], values))])
    # found next to finite dense gradients too
    grads = [param_with(torch.ones(6, 2)), param_with(sparse_rows([4, 1, 4], values))]
    assert not finite_gradients(grads)


def test_finite_sparse_gradient_is_finite() -> None:
    grad = sparse_rows([5, 0, 5], torch.randn(3, 2))
    assert finite_gradients([param_with(grad), param_with(torch.ones(6, 2))])
    assert finite_gradients([param_with(grad.coalesce())])


def test_empty_sparse_gradient_is_finite() -> None:
    empty = sparse_rows([], torch.zeros(0, 2))
    assert empty._nnz() == 0
    assert finite_gradients([param_with(empty)])
    assert finite_gradients([param_with(empty), param_with(torch.ones(6, 2))])
    bad = torch.ones(6, 2)
    bad[0, 0] = float("nan")
    assert not finite_gradients([param_with(empty), param_with(bad)])
