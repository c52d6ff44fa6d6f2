"""The run's optimizer (``train.optimizer``), freezing (``train.train_only``), clipping.

``adam`` is the default: torch's Adam, or MaskedAdam when a parameter is tagged
``masked_updates`` (DVGO); ``sgd`` (momentum 0.9), ``adamw`` (weight decay 0.01) and
``rmsprop`` are torch's with their defaults otherwise, and get sparse gradients made
dense first; ``uniform_adam`` is the Laplacian-preconditioned Adam for grids
(``uniform_adam.py``). The Adam family (``adam``, MaskedAdam, ``adamw``,
``uniform_adam``) takes ``train.beta2`` and ``train.eps`` (Instant-NGP trains its hash
table with 0.99 and 1e-15). Parameter groups carry each parameter's ``lr_scale`` tag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from atlas_core.capabilities import parameter_tags
from atlas_core.config import TrainConfig
from atlas_core.engine.optimizers.masked_adam import MaskedAdam, is_masked
from atlas_core.engine.optimizers.uniform_adam import UniformAdam, grid_shape
from atlas_core.errors import ConfigError

__all__ = ["AdamW", "RMSprop", "SGD", "clip_gradients", "densify", "freeze", "make_optimizer"]


def densify(optimizer_class: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """A subclass of a torch optimizer that makes sparse gradients dense before stepping."""

    class Dense(optimizer_class):  # type: ignore[misc, valid-type]
        def step(self, closure: Any = None) -> Any:  # noqa: ANN401
            """Densify sparse gradients, then step."""
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None and param.grad.is_sparse:
                        param.grad = param.grad.to_dense()
            return super().step(closure)

    Dense.__name__ = Dense.__qualname__ = f"Dense{optimizer_class.__name__}"
    return Dense


SGD, AdamW, RMSprop = (
    densify(c) for c in (torch.optim.SGD, torch.optim.AdamW, torch.optim.RMSprop)
)


def freeze(module: nn.Module, prefixes: list[str]) -> None:
    """Train only parameters whose qualified name starts with a prefix; freeze the rest."""
    if not prefixes:
        return
    names = [name for name, _ in module.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            tops = sorted({".".join(name.split(".")[:2]) for name in names})
            raise ConfigError(
                f"train.train_only: no parameter name starts with '{prefix}' "
                f"(parameters start with: {', '.join(tops)})"
            )
    for name, param in module.named_parameters():
        param.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))


def make_optimizer(module: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``train.optimizer`` over ``module``'s trainable parameters.

    Groups by each parameter's ``lr_scale`` tag (``tag_parameter``); the schedule
    multiplies every group's rate alike.
    """
    freeze(module, train.train_only)
    params = list(module.parameters())
    if train.train_only:
        params = [p for p in params if p.requires_grad]
    groups: dict[float, list[nn.Parameter]] = {}
    for param in params:
        groups.setdefault(parameter_tags(param).lr_scale, []).append(param)
    lr = train.lr
    param_groups = [
        {"params": ps, "lr": lr * scale, "lr_scale": scale} for scale, ps in groups.items()
    ]
    name = train.optimizer
    adam = {"betas": (0.9, train.beta2), "eps": train.eps}
    if name == "adam":
        if any(is_masked(p) for p in params):
            return MaskedAdam(param_groups, **adam)  # grids: only touched entries move (DVGO)
        return torch.optim.Adam(param_groups, **adam)
    if name == "uniform_adam":
        if not any(grid_shape(p) is not None for p in params):
            raise ConfigError(
                "train.optimizer=uniform_adam: no trainable parameter is tagged as a grid "
                "(tag_parameter(param, grid_shape=...) from atlas_core.api); use adam"
            )
        return UniformAdam(param_groups, lr=lr, laplacian_weight=train.laplacian_weight, **adam)
    if name == "sgd":
        return SGD(param_groups, lr=lr, momentum=0.9)
    if name == "adamw":
        return AdamW(param_groups, lr=lr, weight_decay=0.01, **adam)
    return RMSprop(param_groups, lr=lr)


def clip_gradients(params: Iterable[torch.Tensor], max_norm: float) -> float:
    """Scale all gradients so their joint L2 norm is at most ``max_norm``; returns the norm.

    Sparse gradients count their summed (coalesced) rows.
    """
    grads = [p.grad for p in params if p.grad is not None]
    total = 0.0
    for grad in grads:
        values = grad.coalesce()._values() if grad.is_sparse else grad
        total += float(values.double().square().sum())
    norm = math.sqrt(total)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for grad in grads:
            grad.mul_(scale)
    return norm
