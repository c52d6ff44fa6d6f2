"""Products of bilinear plane lookups (K-Planes eq. 3): fused C++ on CPU, else PyTorch.

``csrc/plane_product.cpp`` reads all planes of a group and multiplies their features in
one pass, forward and backward, parallel over (plane, channel) pairs with OpenMP; the
core's ``load_extension`` compiles it on first use, once per CPU and source, so later
processes only load it. The reference, ``sample_planes(...).prod(0)`` through
``grid_sample``, runs on CUDA, when coordinates need a gradient, when ``kernel="torch"``,
or when there is no compiler (with a warning).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from atlas_core.api import cpu_floats, load_extension, use_native

__all__ = ["KERNEL_ENV", "extension", "plane_product", "sample_planes", "use_fused"]

MODULE = "atlas_dnerf_planes"
KERNEL_ENV = "ATLAS_KPLANES_KERNEL"  # overrides kernel="auto" for a whole run


def sample_planes(planes: Tensor, coords: Tensor) -> Tensor:
    """Bilinear lookups of planes [P, C, H, W] at per-plane (w, h) in [-1, 1]^2,
    ``coords`` [P, N, 2]: [P, N, C]."""
    sampled = F.grid_sample(planes, coords[:, :, None, :], mode="bilinear",
                            align_corners=True, padding_mode="border")  # fmt: skip
    return sampled[..., 0].permute(0, 2, 1)


def extension() -> Any | None:
    """The compiled module (built on first call, then cached), or None if it cannot build."""
    source = str(resources.files("atlas_plugin_dnerf") / "csrc" / "plane_product.cpp")
    return load_extension(MODULE, source, "dnerf: the fused K-Planes lookup")


def supports(planes: Tensor, coords: Tensor) -> bool:
    """True when the fused kernel handles these planes [P, C, H, W] and coords [P, N, 2]."""
    return (
        cpu_floats(planes, coords)
        and not (coords.requires_grad and torch.is_grad_enabled())
        and planes.shape[-1] >= 2
        and planes.shape[-2] >= 2
    )


def use_fused(kernel: str, planes: Tensor, coords: Tensor) -> bool:
    """True when a lookup with this ``kernel`` choice (auto, cpp, torch) runs the C++ kernel."""
    return use_native(kernel, supports(planes, coords), "dnerf", extension, KERNEL_ENV)


class _FusedPlaneProduct(torch.autograd.Function):
    """The product of bilinear lookups: one fused C++ pass each way."""

    @staticmethod
    def forward(ctx: Any, planes: Tensor, coords: Tensor) -> Tensor:
        """Features [N, C] of coords [P, N, 2] on planes [P, C, H, W]."""
        keep = ctx.needs_input_grad[0]
        product, values = extension().forward(planes, coords, keep)
        ctx.save_for_backward(planes, coords, values)
        return product.t()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        """Gradient for the planes (coordinates take no gradient on this path)."""
        planes, coords, values = ctx.saved_tensors
        return extension().backward(planes, coords, values, grad.t()), None


def plane_product(planes: Tensor, coords: Tensor, fused: bool) -> Tensor:
    """Product over planes of their bilinear lookups at ``coords`` [P, N, 2]: [N, C];
    ``fused``: through the C++ kernel (``use_fused`` says when it may)."""
    if fused:
        return _FusedPlaneProduct.apply(planes.contiguous(), coords.contiguous())
    return sample_planes(planes, coords).prod(dim=0)
