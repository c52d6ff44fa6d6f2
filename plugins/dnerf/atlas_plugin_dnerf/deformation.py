"""Deformations: map a point x observed at time t to its canonical position x + dx.

Every variant returns ``{"deformation": dx [N, 3], ...}`` with dx = 0 at t = 0, so the
canonical frame is the scene at t = 0 (D-NeRF, Pumarola et al. 2021, sec. 4.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.api import PositionalEncoding, mlp, tag_parameter
from atlas_plugin_dnerf.options import DNeRFOptions


def zero_last_layer(net: nn.Sequential) -> nn.Sequential:
    """Start with zero output, so training begins from the static canonical scene."""
    last = net[-1]
    assert isinstance(last, nn.Linear)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net


class Deformation(nn.Module):
    """Base class: ``forward(x [N, 3], t [N, 1]) -> {"deformation": [N, 3], ...}``."""

    def __init__(self, bound: float):
        super().__init__()
        self.bound = bound

    def unit(self, x: Tensor) -> Tensor:
        """World positions scaled so the scene box is [-1, 1]^3."""
        return x / self.bound


class MLPDeformation(Deformation):
    """D-NeRF's deformation network Psi_t(gamma(x), gamma(t)) -> dx (Pumarola et al. 2021,
    eq. 2), forced to zero at t = 0 as in the paper (narrower than its 8x256 for CPUs)."""

    def __init__(self, bound: float, options: DNeRFOptions):
        super().__init__(bound)
        self.position_encoding = PositionalEncoding(3, options.frequencies)
        self.time_encoding = PositionalEncoding(1, options.time_frequencies)
        in_dim = self.position_encoding.out_dim + self.time_encoding.out_dim
        self.net = zero_last_layer(mlp(in_dim, options.width, options.depth, 3))

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Displacement into the canonical frame."""
        encoded = torch.cat([self.position_encoding(self.unit(x)), self.time_encoding(t)], -1)
        dx = self.net(encoded)
        return {"deformation": torch.where(t == 0, torch.zeros_like(dx), dx)}


def bernstein(t: Tensor, degree: int) -> Tensor:
    """Bernstein basis b_{i,n}(t) = C(n, i) t^i (1 - t)^(n - i), i = 0..n: [N, n + 1]."""
    i = torch.arange(degree + 1, device=t.device, dtype=t.dtype)
    binomial = torch.tensor([math.comb(degree, k) for k in range(degree + 1)], device=t.device)
    return binomial.to(t.dtype) * t**i * (1 - t) ** (degree - i)


class SplineDeformation(Deformation):
    """Per-point Bezier motion with a rigidity score.

    An MLP of gamma(x) gives control points P_1..P_{K-1} (P_0 = 0, so dx(t=0) = 0) and a
    rigidity r in [0, 1]; dx = r * sum_i b_{i,K-1}(t) P_i. The rigidity scales the motion
    as in Non-Rigid NeRF (Tretschk et al. 2021, sec. 3.2): r = 0 is static.
    """

    def __init__(self, bound: float, options: DNeRFOptions):
        super().__init__(bound)
        self.count = options.control_points
        self.position_encoding = PositionalEncoding(3, options.frequencies)
        out = 3 * (self.count - 1) + 1
        self.net = zero_last_layer(mlp(self.position_encoding.out_dim, options.width,
                                       options.depth, out))  # fmt: skip

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Displacement, rigidity [N, 1] and control points [N, K, 3] (P_0 included)."""
        raw = self.net(self.position_encoding(self.unit(x)))
        rigidity = torch.sigmoid(raw[:, :1])
        moving = raw[:, 1:].view(-1, self.count - 1, 3)
        points = torch.cat([torch.zeros_like(moving[:, :1]), moving], dim=1)
        curve = (bernstein(t, self.count - 1)[:, :, None] * points).sum(dim=1)
        return {"deformation": rigidity * curve, "rigidity": rigidity, "control_points": points}


class PlanesDeformation(Deformation):
    """Factored space-time planes xt, yt, zt at several spatial resolutions.

    As in K-Planes (Fridovich-Keil et al. 2023, eq. 3) and HexPlane (Cao and Johnson
    2023): each plane is bilinearly interpolated, the three planes of a scale are
    multiplied (Hadamard product), the scales concatenated and decoded by a one-layer MLP;
    dx = t * MLP(features), so dx = 0 at t = 0.
    """

    def __init__(self, bound: float, options: DNeRFOptions):
        super().__init__(bound)
        self.planes = nn.ParameterList()
        for resolution in options.plane_resolutions:
            shape = (3, options.plane_features, options.time_resolution, resolution)
            plane = nn.Parameter(1.0 + 0.1 * torch.randn(shape))
            tag_parameter(plane, lr_scale=options.plane_lr_scale)  # grids learn faster (DVGO)
            self.planes.append(plane)
        in_dim = options.plane_features * len(options.plane_resolutions)
        self.net = zero_last_layer(mlp(in_dim, options.width, 1, 3))

    def features(self, x: Tensor, t: Tensor) -> Tensor:
        """Multi-scale plane features [N, F * scales]."""
        unit = self.unit(x).clamp(-1.0, 1.0)
        time = (2.0 * t - 1.0).expand_as(unit)
        # grid_sample reads (width, height) = (space, time); one batch entry per plane
        grid = torch.stack([unit, time], dim=-1).permute(1, 0, 2)[:, :, None, :]
        parts = []
        for plane in self.planes:
            sampled = F.grid_sample(plane, grid, mode="bilinear", align_corners=True)
            parts.append(sampled[..., 0].prod(dim=0).t())
        return torch.cat(parts, dim=-1)

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Displacement into the canonical frame."""
        return {"deformation": t * self.net(self.features(x, t))}


VARIANTS: dict[str, type[Deformation]] = {
    "mlp": MLPDeformation,
    "spline": SplineDeformation,
    "planes": PlanesDeformation,
}


def make_deformation(bound: float, options: DNeRFOptions) -> Deformation:
    """The deformation chosen by ``dnerf.deformation``."""
    return VARIANTS[options.deformation](bound, options)
