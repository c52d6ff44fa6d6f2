"""Uniform Adam with Laplacian-preconditioned gradients for dense grid parameters.

Nicolet, Jacobson and Jakob 2021, "Large Steps in Inverse Rendering of Geometry"
(sec. 4-5), done on voxel grids instead of meshes: the gradient ``g`` of a grid
parameter is replaced by the smoother ``(I + lambda L)^-1 g``, with ``L`` the graph
Laplacian of the grid's 6-neighbourhood (Neumann boundary), solved by conjugate
gradients; Adam's second moment is then made uniform over the parameter (its largest
entry, as in the paper's "uniform Adam" variant), so the smoothing is not undone by
per-entry rescaling. Unlike the paper the grid is updated directly (no
reparametrisation ``x = (I + lambda L)^-1 u``), so one solve is done per step and
checkpoints hold the grid itself.

A grid parameter is tagged ``tag_parameter(param, grid_shape=(X, Y, Z))`` and stored
channels-last as [X*Y*Z, C]; sparse gradients are made dense. Other parameters get
the plain Adam update.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from atlas_core.capabilities import parameter_tags, tag_parameter
from atlas_core.engine.optimizers.masked_adam import adam_state

__all__ = ["UniformAdam", "grid_shape", "laplacian", "smooth", "tag_grid"]


def tag_grid(param: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Deprecated (0.1): ``tag_parameter(param, grid_shape=shape)`` from atlas_core.api."""
    warnings.warn(
        "tag_grid is deprecated: use tag_parameter(param, grid_shape=shape) from atlas_core.api",
        DeprecationWarning,
        stacklevel=2,
    )
    return tag_parameter(param, grid_shape=shape)


def grid_shape(param: Tensor) -> tuple[int, int, int] | None:
    """The vertices per axis of a tagged grid parameter, else None."""
    return parameter_tags(param).grid_shape


def laplacian(volume: Tensor) -> Tensor:
    """Graph Laplacian of [C, X, Y, Z] values over the 6-neighbourhood (Neumann boundary)."""
    out = torch.zeros_like(volume)
    for axis in (1, 2, 3):
        n = volume.shape[axis]
        if n < 2:
            continue
        diff = volume.narrow(axis, 0, n - 1) - volume.narrow(axis, 1, n - 1)
        out.narrow(axis, 0, n - 1).add_(diff)
        out.narrow(axis, 1, n - 1).sub_(diff)
    return out


def smooth(
    grad: Tensor, shape: tuple[int, int, int], weight: float, iterations: int = 30
) -> Tensor:
    """Solve ``(I + weight L) y = grad`` for a grid gradient [X*Y*Z, C] by conjugate gradients."""
    if weight == 0:
        return grad
    b = grad.T.reshape(grad.shape[1], *shape)

    def apply(x: Tensor) -> Tensor:
        return x + weight * laplacian(x)

    y = b.clone()  # start from the unsmoothed gradient
    r = b - apply(y)
    p = r.clone()
    rr = (r * r).sum()
    tol = 1e-12 * float((b * b).sum())
    for _ in range(iterations):
        if float(rr) <= tol:
            break
        ap = apply(p)
        alpha = rr / (p * ap).sum()
        y.add_(alpha * p)
        r.sub_(alpha * ap)
        rr_new = (r * r).sum()
        p = r + (rr_new / rr) * p
        rr = rr_new
    return y.reshape(grad.shape[1], -1).T


class UniformAdam(torch.optim.Optimizer):
    """Adam; tagged grids get Laplacian-smoothed gradients and a uniform second moment."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        laplacian_weight: float = 4.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        if lr < 0 or eps < 0 or laplacian_weight < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid uniform Adam settings: lr={lr}, betas={betas}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "laplacian_weight": laplacian_weight,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: ANN401
        """One step over every parameter with a gradient."""
        if closure is not None:
            raise ValueError("UniformAdam takes no closure")
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.to_dense() if param.grad.is_sparse else param.grad
                shape = grid_shape(param)
                if shape is not None:
                    grad = smooth(grad, shape, group["laplacian_weight"])
                state = adam_state(self.state[param], param)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = v.sqrt() / math.sqrt(1 - beta2**t)
                if shape is not None:  # one rate for the whole grid (Nicolet et al. 2021)
                    denom = denom.amax()
                param.addcdiv_(m, denom + group["eps"], value=-group["lr"] / (1 - beta1**t))
