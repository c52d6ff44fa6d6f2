"""A space-time radiance field without deformation: K-Planes / HexPlane.

Six planes over the coordinate pairs of (x, y, z, t) (K-Planes, Fridovich-Keil et al.
2023, sec. 3.1; HexPlane, Cao and Johnson 2023): xy, xz, yz (space) and xt, yt, zt
(space-time), at several spatial resolutions. A point's feature is the Hadamard
product of the six bilinear lookups (K-Planes eq. 3), the scales concatenated; a small
decoder gives density and, with the view direction, colour (K-Planes' hybrid model).
Time planes start at 1, so the scene starts static and each time plane multiplies in
only what changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import (
    Field,
    PositionalEncoding,
    RaySamples,
    kernel_choice,
    mlp,
    tag_parameter,
    trunc_exp,
)
from atlas_plugin_dnerf.plane_product import (
    KERNEL_ENV,
    extension,
    plane_product,
    sample_planes,
    use_fused,
)

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

__all__ = ["SPACE_PAIRS", "TIME_PAIRS", "KPlanesField", "max_over_time", "sample_planes"]

SPACE_PAIRS = ((0, 1), (0, 2), (1, 2))  # xy, xz, yz: (width axis, height axis)
TIME_PAIRS = (0, 1, 2)  # xt, yt, zt: width = the space axis, height = time
DENSITY_SHIFT = -1.0  # trunc_exp(raw - 1): a low initial density (K-Planes)


def max_over_time(density_at: callable, positions: Tensor, count: int) -> Tensor:
    """max_k density(x, t_k) over ``count`` stratified, jittered times in [0, 1]: [N, 1].

    Lets an occupancy grid refreshed from ``density(x)`` keep a cell that is dense at
    any time, not only at the time one random draw happens to pick.
    """
    n = positions.shape[0]
    offsets = torch.rand(count, n, 1, device=positions.device, dtype=positions.dtype)
    bins = torch.arange(count, device=positions.device, dtype=positions.dtype)
    times = ((bins[:, None, None] + offsets) / count).reshape(-1, 1)
    density = density_at(positions.repeat(count, 1), times)
    return density.view(count, n, -1).amax(dim=0)


class KPlanesField(Field):
    """Density and colour from six multiplied feature planes over (x, y, z, t).

    ``resolutions``: spatial cells per plane side at each scale; ``time_resolution``: time
    cells of the space-time planes; ``features``: channels per plane; ``width``: hidden
    width of the density and colour decoders; ``geo_features``: features passed from
    density to colour; ``plane_lr_scale``, ``decoder_lr_scale``: the planes' and the
    decoders' learning rates as multiples of ``train.lr`` (high, as a voxel grid's: a CPU
    budget buys hundreds of steps, not K-Planes' 30k); ``occupancy_times``: times at
    which ``density(x)`` without times takes its maximum (the time-aware occupancy grid);
    ``kernel``: ``auto`` multiplies each group's lookups in the fused C++ kernel on CPU
    when it builds (``ATLAS_KPLANES_KERNEL`` overrides auto), ``cpp`` requires it,
    ``torch`` runs ``grid_sample``.
    """

    def __init__(
        self,
        context: BuildContext,
        resolutions: tuple[int, ...] = (16, 32, 64, 128),  # results/dnerf-motion-2026-12-06
        time_resolution: int = 32,
        features: int = 32,  # as the K-Planes paper; results/dnerf-motion-2026-12-07
        width: int = 64,
        geo_features: int = 15,
        dir_frequencies: int = 4,
        plane_lr_scale: float = 20.0,
        decoder_lr_scale: float = 4.0,
        occupancy_times: int = 4,
        kernel: str = "auto",
    ):
        super().__init__()
        if not resolutions or min(resolutions) < 2 or time_resolution < 2:
            raise ValueError("resolutions and time_resolution must be >= 2")
        if features < 1 or width < 1 or geo_features < 0 or occupancy_times < 1:
            raise ValueError("features, width, occupancy_times must be >= 1, geo_features >= 0")
        if plane_lr_scale <= 0 or decoder_lr_scale <= 0 or dir_frequencies < 0:
            raise ValueError("plane_lr_scale, decoder_lr_scale must be > 0, dir_frequencies >= 0")
        bounds = context.scene.bounds
        self.register_buffer("low", torch.tensor(bounds[:3], dtype=torch.float32))
        self.register_buffer("high", torch.tensor(bounds[3:], dtype=torch.float32))
        self.occupancy_times = occupancy_times
        self.kernel = kernel
        if kernel_choice(kernel, KERNEL_ENV) != "torch" and not torch.cuda.is_available():
            extension()  # build now, before any training clock starts (cached)
        self.last_kernel = ""  # "cpp" or "torch": the path the last lookup took
        self.space_planes = nn.ParameterList()
        self.time_planes = nn.ParameterList()
        for res in resolutions:
            space = nn.Parameter(torch.empty(3, features, res, res).uniform_(0.1, 0.5))
            time = nn.Parameter(torch.ones(3, features, time_resolution, res))
            for plane in (space, time):
                tag_parameter(plane, lr_scale=plane_lr_scale)
            self.space_planes.append(space)
            self.time_planes.append(time)
        self.geo_features = geo_features
        self.density_net = mlp(features * len(resolutions), width, 1, 1 + geo_features)
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        self.rgb_net = mlp(geo_features + self.dir_encoding.out_dim, width, 2, 3)
        for net in (self.density_net, self.rgb_net):
            for param in net.parameters():
                tag_parameter(param, lr_scale=decoder_lr_scale)

    def unit(self, positions: Tensor) -> Tensor:
        """Positions mapped so the scene box is [-1, 1]^3."""
        return 2.0 * (positions - self.low) / (self.high - self.low) - 1.0

    def lookup(self, planes: Tensor, coords: Tensor) -> Tensor:
        """Product of one group's bilinear lookups at ``coords`` [3, N, 2]: [N, F]."""
        fused = use_fused(self.kernel, planes, coords)
        self.last_kernel = "cpp" if fused else "torch"
        return plane_product(planes, coords, fused)

    def space_features(self, positions: Tensor) -> list[Tensor]:
        """Per scale, the product of the three space planes' features [N, F]."""
        x = self.unit(positions)
        space = torch.stack([x[:, list(pair)] for pair in SPACE_PAIRS])
        return [self.lookup(plane, space) for plane in self.space_planes]

    def time_features(self, positions: Tensor, times: Tensor) -> list[Tensor]:
        """Per scale, the product of the three space-time planes' features [N, F]."""
        x = self.unit(positions)
        t = (2.0 * times - 1.0).expand(-1, 1)
        time = torch.stack([torch.cat([x[:, [axis]], t], -1) for axis in TIME_PAIRS])
        return [self.lookup(plane, time) for plane in self.time_planes]

    def features(self, positions: Tensor, times: Tensor) -> Tensor:
        """Hadamard product of the six planes' features, scales concatenated: [N, F * S]."""
        space = self.space_features(positions)
        time = self.time_features(positions, times)
        return torch.cat([s * t for s, t in zip(space, time, strict=True)], dim=-1)

    def decode_density(self, features: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Density [N, 1] (zero outside the box) and geometry features [N, G]."""
        raw = self.density_net(features)
        inside = ((positions >= self.low) & (positions <= self.high)).all(-1, keepdim=True)
        return trunc_exp(raw[:, :1] + DENSITY_SHIFT) * inside, raw[:, 1:]

    def geometry(self, positions: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
        """Density [N, 1] and geometry features [N, G] at ``times``."""
        return self.decode_density(self.features(positions, times), positions)

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at ``times``; without times, the maximum over time."""
        if times is None:
            space = self.space_features(positions)  # read once for every time
            count = self.occupancy_times

            def at(repeated: Tensor, t: Tensor) -> Tensor:
                time = self.time_features(repeated, t)
                features = torch.cat([s.repeat(count, 1) * f for s, f in zip(space, time,
                                      strict=True)], dim=-1)  # fmt: skip
                return self.decode_density(features, repeated)[0]

            return max_over_time(at, positions, count)
        return self.geometry(positions, times)[0]

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density and view-dependent colour at the samples at their rays' times
        (t = 0 for rays without a time)."""
        positions = samples.positions
        times = samples.times
        if times is None:
            times = positions.new_zeros(positions.shape[0], 1)
        density, geo = self.geometry(positions, times)
        encoded = torch.cat([geo, self.dir_encoding(samples.directions)], dim=-1)
        return {"density": density, "rgb": torch.sigmoid(self.rgb_net(encoded))}
