"""Real spherical harmonics up to degree 2, the view-dependent colour basis of Plenoxels
(Fridovich-Keil et al. 2022, sec. 3) and of DVGO's SH variant."""

from __future__ import annotations

import torch
from torch import Tensor

SH_COEFFICIENTS = 9  # degrees 0, 1 and 2

_C0 = 0.28209479177387814  # 1 / (2 sqrt(pi))
_C1 = 0.4886025119029199  # sqrt(3 / (4 pi))
_C2 = (1.0925484305920792, 0.31539156525252005, 0.5462742152960396)


def sh_basis(directions: Tensor) -> Tensor:
    """The 9 real SH basis functions [N, 9] at unit ``directions`` [N, 3]."""
    x, y, z = directions.unbind(dim=-1)
    return torch.stack(
        [
            torch.full_like(x, _C0),
            -_C1 * y,
            _C1 * z,
            -_C1 * x,
            _C2[0] * x * y,
            -_C2[0] * y * z,
            _C2[1] * (2 * z * z - x * x - y * y),
            -_C2[0] * x * z,
            _C2[2] * (x * x - y * y),
        ],
        dim=-1,
    )


def sh_color(coefficients: Tensor, directions: Tensor) -> Tensor:
    """Sigmoid colour [N, 3] from per-point coefficients [N, 9 * 3] (basis-major)."""
    coefficients = coefficients.view(-1, SH_COEFFICIENTS, 3)
    return torch.sigmoid((sh_basis(directions)[:, :, None] * coefficients).sum(dim=1))
