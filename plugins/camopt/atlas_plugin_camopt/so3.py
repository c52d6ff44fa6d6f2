"""The SO(3) exponential map (Rodrigues' formula) and rotation angles."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["exp_so3", "rotation_angle", "skew"]

SMALL = 1e-6  # theta^2 below which the Taylor series is used


def skew(w: Tensor) -> Tensor:
    """Cross-product matrices [..., 3, 3] of vectors [..., 3]."""
    zero = torch.zeros_like(w[..., 0])
    x, y, z = w.unbind(-1)
    rows = [zero, -z, y, z, zero, -x, -y, x, zero]
    return torch.stack(rows, dim=-1).view(*w.shape[:-1], 3, 3)


def exp_so3(w: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] for axis-angle vectors [..., 3]:
    ``I + sin(t)/t K + (1 - cos t)/t^2 K^2``, exact gradients at ``w = 0``."""
    theta2 = w.square().sum(dim=-1, keepdim=True)[..., None]
    small = theta2 < SMALL
    safe = torch.where(small, torch.ones_like(theta2), theta2)  # no NaN in the unused branch
    theta = safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe)
    k = skew(w)
    eye = torch.eye(3, device=w.device, dtype=w.dtype).expand_as(k)
    return eye + a * k + b * (k @ k)


def rotation_angle(rot: Tensor) -> Tensor:
    """Angles [...] in radians of rotation matrices [..., 3, 3]."""
    trace = rot.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.acos(((trace - 1) / 2).clamp(-1.0, 1.0))
