"""C++ CPU kernels built just in time, with the pure-PyTorch code as the fallback.

:func:`load_extension` compiles a C++ source with ``torch.utils.cpp_extension.load``
into torch's extensions folder (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``) under a name that includes a digest of the CPU (sources
are built with ``-march=native``) and of the source, so later processes only load it.
When there is no compiler or the build fails it warns once and returns None, and the
caller runs its reference code. :func:`kernel_choice` reads a component's ``kernel``
option (``auto``, ``cpp`` or ``torch``) and the environment variable that overrides
``auto`` for a whole run; :func:`use_native` turns that choice, whether the inputs suit
a kernel (:func:`cpu_floats` and the caller's own checks) and whether it built into the
decision to run it. Plugins pass their own build function and variable.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from importlib import resources
from typing import Any

import torch

__all__ = [
    "KERNELS",
    "cpu_floats",
    "cpu_tag",
    "grid_ops",
    "kernel_choice",
    "load_extension",
    "prepare",
    "use_native",
]

KERNELS = ("auto", "cpp", "torch")
GRID_ENV = "ATLAS_GRID_KERNEL"  # overrides kernel=auto for the core's grid kernels

_modules: dict[str, Any] = {}


def cpu_tag() -> str:
    """A short digest of this CPU's model and flags: ``-march=native`` builds are per CPU."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [os.uname().machine]
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:8]


def load_extension(name: str, source: str, what: str, cflags: tuple[str, ...] = ()) -> Any | None:
    """The compiled module for ``source`` (built once per CPU, then cached), or None.

    ``what`` names the kernel in the warning given when it cannot be built.
    """
    if name in _modules:
        return _modules[name]
    module = None
    try:
        from torch.utils.cpp_extension import load

        with open(source, "rb") as text:
            digest = hashlib.sha256(text.read()).hexdigest()[:8]
        flags = ["-O3", "-fopenmp", *cflags]
        if os.uname().machine in ("x86_64", "AMD64"):
            flags.append("-march=native")
        module = load(
            name=f"{name}_{cpu_tag()}_{digest}",
            sources=[source],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as exc:  # no compiler, no ninja, a compile error: use the reference
        message = str(exc).strip().splitlines()
        warnings.warn(
            f"{what} could not be built ({message[-1] if message else exc}); "
            "using the pure-PyTorch reference (slower)",
            RuntimeWarning,
            stacklevel=2,
        )
    _modules[name] = module
    return module


def grid_ops() -> Any | None:
    """The core's voxel-grid and occupancy-march kernels (``csrc/grid_ops.cpp``), or None."""
    source = str(resources.files("atlas_core.nerf") / "csrc" / "grid_ops.cpp")
    # no fused multiply-adds: the kernels round exactly as the PyTorch reference does
    return load_extension("atlas_grid_ops", source, "the C++ grid kernels", ("-ffp-contract=off",))


def kernel_choice(kernel: str, env: str = GRID_ENV) -> str:
    """``auto``, ``cpp`` or ``torch``: ``kernel``, or the variable ``env`` under auto."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel != "auto":
        return kernel
    chosen = os.environ.get(env, "auto").strip().lower() or "auto"
    if chosen not in KERNELS:
        raise ValueError(f"{env} must be one of {', '.join(KERNELS)}, got {chosen!r}")
    return chosen


def prepare(kernel: str) -> None:
    """Build the grid kernels now (when the run may use them and no CUDA device is
    present), so that a first build never counts toward a training clock."""
    if kernel_choice(kernel) != "torch" and not torch.cuda.is_available():
        grid_ops()


def cpu_floats(*tensors: torch.Tensor) -> bool:
    """True when every tensor is on the CPU in one dtype, float32 or float64: what the
    C++ kernels take (other inputs run the PyTorch reference)."""
    dtype = tensors[0].dtype
    return dtype in (torch.float32, torch.float64) and all(
        t.device.type == "cpu" and t.dtype == dtype for t in tensors
    )


def use_native(
    kernel: str,
    supported: bool,
    what: str,
    build: Callable[[], Any | None] | None = None,
    env: str = GRID_ENV,
) -> bool:
    """True when a call with this ``kernel`` choice runs the C++ kernels ``build`` returns
    (None: the core's grid kernels, ``grid_ops``; ``env`` overrides ``auto``).

    ``supported``: the inputs suit the kernel (CPU tensors of a handled dtype...); when
    they do not, the reference runs. ``kernel=cpp`` without a build is an error.
    """
    chosen = kernel_choice(kernel, env)
    if chosen == "torch" or not supported:
        return False
    if (build or grid_ops)() is not None:
        return True
    if chosen == "cpp":
        raise RuntimeError(f"{what}: kernel=cpp but its C++ kernel could not be built")
    return False
