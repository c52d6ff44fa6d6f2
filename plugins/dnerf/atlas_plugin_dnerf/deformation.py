"""Deformations: map a point x observed at time t to its canonical position x + dx.

Every variant returns ``{"deformation": dx [N, 3], ...}``. With ``canonical = "t0"``
dx = 0 at t = 0, so the canonical frame is the scene at t = 0 (D-NeRF, Pumarola et al.
2021, sec. 4.1); with ``"learned"`` the mlp and planes variants drop that constraint and
the canonical frame is whatever the fit finds (as Nerfies' template, Park et al. 2021).
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


def window(progress: float, count: int) -> Tensor:
    """Coarse-to-fine weights [count] of Nerfies (Park et al. 2021, eq. 8):
    w_j = (1 - cos(pi * clamp(alpha - j, 0, 1))) / 2 with alpha = progress * count."""
    alpha = progress * count
    j = torch.arange(count, dtype=torch.float32)
    return 0.5 * (1.0 - torch.cos(math.pi * (alpha - j).clamp(0.0, 1.0)))


class Deformation(nn.Module):
    """Base class: ``forward(x [N, 3], t [N, 1]) -> {"deformation": [N, 3], ...}``.

    ``set_progress(step)`` moves the coarse-to-fine window over ``anneal_steps`` steps.
    """

    def __init__(self, bound: float, options: DNeRFOptions | None = None):
        super().__init__()
        self.bound = bound
        options = options or DNeRFOptions()
        self.anchored = options.canonical == "t0"
        self.scale = options.deformation_scale
        self.anneal_steps = options.anneal_steps
        self.register_buffer("progress", torch.tensor(1.0 if not self.anneal_steps else 0.0))

    def set_progress(self, step: int) -> None:
        """Training progress in [0, 1] of the coarse-to-fine window."""
        if self.anneal_steps:
            self.progress.fill_(min(1.0, step / self.anneal_steps))

    def unit(self, x: Tensor) -> Tensor:
        """World positions scaled so the scene box is [-1, 1]^3."""
        return x / self.bound


class MLPDeformation(Deformation):
    """D-NeRF's deformation network Psi_t(gamma(x), gamma(t)) -> dx (Pumarola et al. 2021,
    eq. 2), forced to zero at t = 0 as in the paper (narrower than its 8x256 for CPUs)."""

    def __init__(self, bound: float, options: DNeRFOptions):
        super().__init__(bound, options)
        self.position_encoding = PositionalEncoding(3, options.frequencies)
        self.time_encoding = PositionalEncoding(1, options.time_frequencies)
        in_dim = self.position_encoding.out_dim + self.time_encoding.out_dim
        self.net = zero_last_layer(mlp(in_dim, options.width, options.depth, 3))

    def windowed(self, encoding: PositionalEncoding, values: Tensor) -> Tensor:
        """The encoding with its sin/cos of frequency j weighted by the window's w_j."""
        encoded = encoding(values)
        frequencies = encoding.freqs.numel()
        if not self.anneal_steps or not frequencies:
            return encoded
        dims = values.shape[-1]
        weights = window(float(self.progress), frequencies).to(encoded)
        per_column = weights.repeat_interleave(dims).repeat(2)  # the sin block, the cos block
        head = encoded.shape[-1] - per_column.numel()  # the raw input, if kept
        return torch.cat([encoded[:, :head], encoded[:, head:] * per_column], dim=-1)

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Displacement into the canonical frame."""
        encoded = torch.cat([self.windowed(self.position_encoding, self.unit(x)),
                             self.windowed(self.time_encoding, t)], -1)  # fmt: skip
        dx = self.scale * self.net(encoded)
        if self.anchored:
            dx = torch.where(t == 0, torch.zeros_like(dx), dx)
        return {"deformation": dx}


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
        super().__init__(bound, options)
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
    dx = t * MLP(features), so dx = 0 at t = 0 (``canonical = "learned"``: dx = MLP).
    With ``anneal_steps`` the scales after the first are faded in one after another.
    """

    def __init__(self, bound: float, options: DNeRFOptions):
        super().__init__(bound, options)
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
        weights = window(float(self.progress), len(self.planes) - 1).tolist()
        for index, plane in enumerate(self.planes):
            sampled = F.grid_sample(plane, grid, mode="bilinear", align_corners=True)
            part = sampled[..., 0].prod(dim=0).t()
            parts.append(part if index == 0 else part * weights[index - 1])
        return torch.cat(parts, dim=-1)

    def forward(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Displacement into the canonical frame."""
        dx = self.scale * self.net(self.features(x, t))
        return {"deformation": t * dx if self.anchored else dx}


VARIANTS: dict[str, type[Deformation]] = {
    "mlp": MLPDeformation,
    "spline": SplineDeformation,
    "planes": PlanesDeformation,
}


def make_deformation(bound: float, options: DNeRFOptions) -> Deformation:
    """The deformation chosen by ``dnerf.deformation``."""
    if options.deformation == "none":
        raise ValueError("dnerf.deformation=none has no deformation to make")
    return VARIANTS[options.deformation](bound, options)
