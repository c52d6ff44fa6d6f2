"""Adam that updates only the entries of flagged parameters whose gradient is non-zero.

Dense voxel grids hold millions of entries, yet one batch of rays touches a small part
of them; a dense Adam step still reads and writes every entry of the parameter and both
moments, which costs more than the rest of a CPU training step. DVGO (Sun et al. 2022,
sec. 5, "masked Adam") skips entries with a zero gradient, and so do we for parameters
tagged ``tag_parameter(param, masked_updates=True)``, and sparse gradients (from
``embedding_bag(..., sparse=True)``) update only their rows; other parameters get the
plain Adam update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from atlas_core.capabilities import parameter_tags

__all__ = ["MaskedAdam", "adam_state", "is_masked"]


def is_masked(param: Tensor) -> bool:
    """True when ``param`` asks for masked (touched-entries-only) Adam updates."""
    return parameter_tags(param).masked_updates


def adam_state(state: dict[str, Any], param: Tensor) -> dict[str, Any]:
    """Adam's per-parameter state (step count, first and second moments), created once."""
    if not state:
        state["step"] = torch.zeros(())
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
    return state


def update_rows(
    param: Tensor,
    m: Tensor,
    v: Tensor,
    index: Tensor,
    g: Tensor,
    group: dict[str, Any],
    step_size: float,
    root_correction: float,
) -> None:
    """Adam on the rows ``index`` (distinct) of ``param`` and its moments, gradient ``g``.

    Rows are read, updated and written back with ``index_copy_``: on a CPU that is 4-10x
    faster than ``index_add_`` into a large grid (measured: 500k rows of a 16M x 12 grid,
    37 ms against 149 ms), and the rows are distinct, so nothing needs accumulating.
    """
    beta1, beta2 = group["betas"]
    m_now = m.index_select(0, index).mul_(beta1).add_(g, alpha=1 - beta1)
    v_now = v.index_select(0, index).mul_(beta2).addcmul_(g, g, value=1 - beta2)
    denom = v_now.sqrt().div_(root_correction).add_(group["eps"])
    m.index_copy_(0, index, m_now)
    v.index_copy_(0, index, v_now)
    moved = param.index_select(0, index).addcdiv_(m_now, denom, value=-step_size)
    param.index_copy_(0, index, moved)


class MaskedAdam(torch.optim.Optimizer):
    """Adam (Kingma and Ba 2015); entries of masked parameters move only when touched.

    An untouched entry keeps its value and both moments, so it resumes where it left off
    (DVGO's masked Adam); every step counts towards the bias correction.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        if lr < 0 or eps < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})
        self.scratch: dict[Tensor, tuple[Tensor, Tensor]] = {}

    def touched_rows(self, param: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
        """Distinct touched rows of a sparse row gradient and their values: as given when
        the rows already increase strictly (``grid.sample``'s fused backward hands them
        over so; autograd drops the coalesced flag), else summed by :meth:`sum_rows`."""
        index = grad._indices()[0]
        if grad.is_coalesced() or bool((index[1:] > index[:-1]).all()):
            return index, grad._values()
        return self.sum_rows(param, grad)

    def sum_rows(self, param: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
        """Touched rows (increasing) of a sparse row gradient and their summed values.

        Same result as ``grad.coalesce()`` without its sort, the costliest part of a
        step on a CPU: values are summed into a zeroed scratch copy of the parameter, a
        flag per row marks the touched ones, and both are cleared again row by row.
        """
        if param not in self.scratch:  # work buffers, kept out of the checkpointed state
            flags = torch.zeros(param.shape[0], dtype=torch.bool, device=param.device)
            self.scratch[param] = (torch.zeros_like(param), flags)
        scratch, touched = self.scratch[param]
        index = grad._indices()[0]
        scratch.index_put_((index,), grad._values(), accumulate=True)
        touched[index] = True
        rows = touched.nonzero().view(-1)
        touched[rows] = False
        summed = scratch.index_select(0, rows)
        scratch.index_fill_(0, rows, 0.0)
        return rows, summed

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: ANN401
        """One Adam step over every parameter with a gradient."""
        if closure is not None:
            raise ValueError("MaskedAdam takes no closure")
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = adam_state(self.state[param], param)
                state["step"] += 1
                t = float(state["step"])
                step_size = group["lr"] / (1 - beta1**t)
                root_correction = math.sqrt(1 - beta2**t)
                grad, m, v = param.grad, state["exp_avg"], state["exp_avg_sq"]
                if grad.is_sparse:  # rows of a channels-last grid: update those rows only
                    index, g = self.touched_rows(param, grad)
                    update_rows(param, m, v, index, g, group, step_size, root_correction)
                elif is_masked(param):
                    index = grad.reshape(-1).nonzero().view(-1)
                    flat = (x.view(-1, 1) for x in (param, m, v))
                    g = grad.reshape(-1)[index, None]
                    update_rows(*flat, index, g, group, step_size, root_correction)
                else:
                    m.mul_(beta1).add_(grad, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    denom = v.sqrt().div_(root_correction).add_(group["eps"])
                    param.addcdiv_(m, denom, value=-step_size)
