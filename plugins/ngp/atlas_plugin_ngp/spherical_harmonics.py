"""Real spherical harmonics of unit directions, the view encoding of Instant-NGP.

Mueller et al. 2022, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding", sec. 5.4: the colour network sees the view direction projected onto the first
16 real SH basis functions (degree 4, i.e. bands l = 0..3). The constants are the usual
orthonormal normalisations, e.g. Y_0^0 = 1 / (2 sqrt(pi)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from atlas_core.api import Encoding

C0 = 0.28209479177387814  # 1 / (2 sqrt(pi))
C1 = 0.4886025119029199  # sqrt(3 / (4 pi))
C2 = (1.0925484305920792, 0.31539156525252005, 0.5462742152960396)
C3 = (0.5900435899266435, 2.890611442640554, 0.4570457994644658, 0.3731763325901154,
      1.445305721320277)  # fmt: skip


class SphericalHarmonics(Encoding):
    """Real SH basis up to ``degree`` (1..4 bands): [N, 3] unit vectors -> [N, degree**2]."""

    def __init__(self, in_dim: int = 3, degree: int = 4):
        super().__init__()
        if in_dim != 3:
            raise ValueError("spherical harmonics encode 3D directions")
        if not 1 <= degree <= 4:
            raise ValueError("degree must be 1..4")
        self.in_dim, self.degree, self.out_dim = in_dim, degree, degree**2

    def forward(self, directions: Tensor) -> Tensor:
        """Encode unit directions [N, 3] to [N, degree**2]."""
        x, y, z = directions.unbind(-1)
        columns = [torch.full_like(x, C0)]
        if self.degree > 1:
            columns += [C1 * y, C1 * z, C1 * x]
        if self.degree > 2:
            xx, yy, zz = x * x, y * y, z * z
            columns += [
                C2[0] * x * y,
                C2[0] * y * z,
                C2[1] * (3.0 * zz - 1.0),
                C2[0] * x * z,
                C2[2] * (xx - yy),
            ]
        if self.degree > 3:
            columns += [
                C3[0] * y * (3.0 * xx - yy),
                C3[1] * x * y * z,
                C3[2] * y * (5.0 * zz - 1.0),
                C3[3] * z * (5.0 * zz - 3.0),
                C3[2] * x * (5.0 * zz - 1.0),
                C3[4] * z * (xx - yy),
                C3[0] * x * (xx - 3.0 * yy),
            ]
        return torch.stack(columns, dim=-1)
