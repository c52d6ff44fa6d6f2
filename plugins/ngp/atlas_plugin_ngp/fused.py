"""The fused CPU hash encoding (Mueller et al. 2022, Instant-NGP), built just in time.

``csrc/hash_encoding.cpp`` computes all levels and corners of the multiresolution hash
encoding in one pass per point, forward and backward, parallel with OpenMP; the table
gradient is accumulated without a global scatter. The core's ``load_extension``
compiles it on first use into torch's extensions folder, once per CPU and source
(about 35 s on 2 cores), so later processes only load it. When there is no compiler or
the build fails, :func:`extension` warns once and returns None, and the encoding uses
the pure-PyTorch reference in ``hash_encoding.py``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import torch
from torch import Tensor

from atlas_core.api import cpu_floats, load_extension

MODULE = "atlas_ngp_hash"
# 0: threads own whole levels (no extra memory); 1: per-thread gradient copies, summed
STRATEGY_LEVELS, STRATEGY_COPIES = 0, 1
COPIES_LIMIT = 256 * 2**20  # bytes of per-thread gradient copies allowed in all
SUPPORTED_DIMS = (2, 3)
SUPPORTED_FEATURES = (1, 2, 4, 8)


def source_path() -> str:
    """Path of the C++ source inside the installed package."""
    return str(resources.files("atlas_plugin_ngp") / "csrc" / "hash_encoding.cpp")


def extension() -> Any | None:
    """The compiled module (built on first call, then cached), or None if it cannot build."""
    return load_extension(MODULE, source_path(), "ngp: the fused hash encoding")


def supports(xt: Tensor, table: Tensor) -> bool:
    """True when the fused kernel handles points ``xt`` [d, N] and this table."""
    return (
        cpu_floats(xt, table)
        and xt.shape[0] in SUPPORTED_DIMS
        and table.shape[1] in SUPPORTED_FEATURES
    )


def strategy(table: Tensor, levels: int) -> int:
    """How the backward pass avoids races: threads own levels while there are enough
    levels to go round (measured faster on 2 cores), else per-thread gradient copies
    while they stay under ``COPIES_LIMIT`` bytes."""
    threads = torch.get_num_threads()
    copies = (threads - 1) * table.numel() * table.element_size()
    return STRATEGY_COPIES if threads > levels and copies <= COPIES_LIMIT else STRATEGY_LEVELS


class FusedHashLookup(torch.autograd.Function):
    """Interpolated multiresolution table lookup: one fused C++ pass each way."""

    @staticmethod
    def forward(
        ctx: Any, xt: Tensor, table: Tensor, levels: tuple[Tensor, ...], size: int
    ) -> Tensor:
        """Features [N, L, F] of points ``xt`` [d, N] in [0, 1]^d."""
        module = extension()
        ctx.save_for_backward(xt, table)
        ctx.levels, ctx.size = levels, size
        return module.forward(xt, table, *levels, size)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        """Gradients for the points (when asked) and for the table."""
        module = extension()
        xt, table = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_table = None
        if ctx.needs_input_grad[1]:
            how = strategy(table, grad.shape[1])
            grad_table = module.backward_table(xt, grad, table.shape[0], *ctx.levels, ctx.size, how)
        if ctx.needs_input_grad[0]:
            grad_x = module.backward_points(xt, table, grad, *ctx.levels, ctx.size)
        return grad_x, grad_table, None, None


def fused_lookup(xt: Tensor, table: Tensor, levels: tuple[Tensor, ...], size: int) -> Tensor:
    """Features [N, L, F] of points ``xt`` [d, N]: the fused kernel, with autograd."""
    return FusedHashLookup.apply(xt, table, levels, size)
