"""The fused CPU hash encoding (Mueller et al. 2022, Instant-NGP), built just in time.

``csrc/hash_encoding.cpp`` computes all levels and corners of the multiresolution hash
encoding in one pass per point, forward and backward, parallel over points with OpenMP;
the table gradient is accumulated without a global scatter. It is compiled on first use
with ``torch.utils.cpp_extension.load`` into torch's extensions folder
(``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``) under a name that
includes a digest of the CPU (it is built with ``-march=native``), so later processes on
this machine only load it (about 35 s to compile on 2 cores). When there is no compiler
or the build fails, :func:`extension` warns once and returns None, and the encoding uses
the pure-PyTorch reference in ``hash_encoding.py``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from importlib import resources
from typing import Any

import torch
from torch import Tensor

MODULE = "atlas_ngp_hash"
# 0: threads own whole levels (no extra memory); 1: per-thread gradient copies, summed
STRATEGY_LEVELS, STRATEGY_COPIES = 0, 1
COPIES_LIMIT = 256 * 2**20  # bytes of per-thread gradient copies allowed in all
SUPPORTED_DIMS = (2, 3)
SUPPORTED_FEATURES = (1, 2, 4, 8)

_state: dict[str, Any] = {}


def source_path() -> str:
    """Path of the C++ source inside the installed package."""
    return str(resources.files("atlas_plugin_ngp") / "csrc" / "hash_encoding.cpp")


def cpu_tag() -> str:
    """A short digest of this CPU's model and flags: ``-march=native`` builds are per CPU."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [os.uname().machine]
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:8]


def extension() -> Any | None:
    """The compiled module (built on first call, then cached), or None if it cannot build."""
    if "module" in _state:
        return _state["module"]
    module = None
    try:
        from torch.utils.cpp_extension import load

        flags = ["-O3", "-fopenmp"]
        if os.uname().machine in ("x86_64", "AMD64"):
            flags.append("-march=native")
        module = load(
            name=f"{MODULE}_{cpu_tag()}",
            sources=[source_path()],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as exc:  # no compiler, no ninja, a compile error: use the reference
        message = str(exc).strip().splitlines()
        warnings.warn(
            f"ngp: the fused hash encoding could not be built ({message[-1] if message else exc})"
            "; using the pure-PyTorch reference (slower)",
            RuntimeWarning,
            stacklevel=2,
        )
    _state["module"] = module
    return module


def supports(xt: Tensor, table: Tensor) -> bool:
    """True when the fused kernel handles points ``xt`` [d, N] and this table."""
    return (
        xt.device.type == "cpu"
        and table.device.type == "cpu"
        and table.dtype in (torch.float32, torch.float64)
        and xt.dtype == table.dtype
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
