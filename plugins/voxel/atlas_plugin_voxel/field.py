"""VoxelField: DVGO's dense density and colour-feature grids (Sun et al. 2022)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.encodings import PositionalEncoding
from atlas_core.fields import Field, mlp
from atlas_core.rays import RaySamples
from atlas_plugin_voxel.grid import Corners, corners, interpolate, resample
from atlas_plugin_voxel.sh import SH_COEFFICIENTS, sh_color

if TYPE_CHECKING:
    from atlas_core.pipeline import BuildContext

GRIDS = ("density_grid", "feature_grid")


def grid_shape(extent: tuple[float, float, float], resolution: int) -> tuple[int, int, int]:
    """Vertices per axis: ``resolution`` along the longest side, the same spacing elsewhere."""
    longest = max(extent)
    return tuple(max(2, round((resolution - 1) * e / longest) + 1) for e in extent)


def schedule(initial: int, final: int, count: int) -> list[int]:
    """Resolutions after 0..count upscales, growing the voxel count geometrically (DVGO)."""
    if count == 0:
        return [final]
    return [round(initial * (final / initial) ** (k / count)) for k in range(count + 1)]


class VoxelField(Field):
    """Dense voxel radiance field of DVGO (Sun et al. 2022, "Direct Voxel Grid Optimization").

    A 1-channel density grid, trilinearly interpolated and then activated
    (post-activation, DVGO sec. 4.1): ``density = softplus(raw + shift) / voxel``, in units
    of one final-resolution voxel as in DVGO, so that raw values of a few units already
    make a voxel opaque; the shift makes the initial opacity across one voxel
    ``alpha_init`` (DVGO eq. 9). Colour is
    ``color="mlp"``: a ``features``-channel grid decoded by a small MLP of the features and
    the encoded view direction (DVGO sec. 5.1), or ``color="sh"``: degree-2 spherical
    harmonics, 27 channels per voxel, no MLP (as Plenoxels). Grids start at
    ``initial_resolution`` and are upscaled at each of ``upscale_steps`` until they reach
    ``resolution`` (progressive scaling, DVGO sec. 5.2), vertices per axis along the
    longest side of the scene box.

    ``grid_lr_scale``: the grids' learning rate as a multiple of ``train.lr`` (set as the
    parameters' ``lr_scale``); DVGO trains its grids at lr 0.1 and its MLP at 1e-3.
    """

    def __init__(
        self,
        context: BuildContext,
        resolution: int = 128,
        initial_resolution: int = 64,
        upscale_steps: tuple[int, ...] = (50, 100, 150),
        features: int = 12,
        color: Literal["mlp", "sh"] = "mlp",
        width: int = 64,
        depth: int = 2,
        dir_frequencies: int = 4,
        alpha_init: float = 1e-2,
        grid_lr_scale: float = 80.0,
    ):
        super().__init__()
        if not 2 <= initial_resolution <= resolution:
            raise ValueError("need 2 <= initial_resolution <= resolution")
        if list(upscale_steps) != sorted(set(upscale_steps)) or any(s < 1 for s in upscale_steps):
            raise ValueError("upscale_steps must be increasing step numbers >= 1")
        if initial_resolution < resolution and not upscale_steps:
            raise ValueError("initial_resolution < resolution needs upscale_steps")
        if features < 1 or width < 1 or depth < 1 or dir_frequencies < 0:
            raise ValueError("features, width and depth must be >= 1, dir_frequencies >= 0")
        if not 0 < alpha_init < 1 or grid_lr_scale <= 0:
            raise ValueError("need 0 < alpha_init < 1 and grid_lr_scale > 0")
        bounds = context.scene.bounds
        self.register_buffer("low", torch.tensor(bounds[:3], dtype=torch.float32), persistent=False)
        self.register_buffer(
            "high", torch.tensor(bounds[3:], dtype=torch.float32), persistent=False
        )
        self.extent = tuple(float(h - lo) for lo, h in zip(bounds[:3], bounds[3:], strict=True))
        if min(self.extent) <= 0:
            raise ValueError(f"scene bounds {bounds} enclose no volume")
        self.upscale_steps = tuple(upscale_steps)
        self.resolutions = schedule(initial_resolution, resolution, len(self.upscale_steps))
        self.grid_lr_scale = float(grid_lr_scale)
        # 1 - exp(-softplus(shift)) = alpha_init across one voxel (DVGO eq. 9)
        self.voxel_size = max(self.extent) / (resolution - 1)
        self.shift = math.log(math.expm1(-math.log1p(-alpha_init)))
        self.color = color
        shape = grid_shape(self.extent, self.resolutions[0])
        channels = 3 * SH_COEFFICIENTS if color == "sh" else features
        self.set_grid("density_grid", torch.zeros(1, *shape))
        self.set_grid("feature_grid", torch.zeros(channels, *shape))
        if color == "mlp":
            self.dir_encoding = PositionalEncoding(3, dir_frequencies)
            self.rgb_net = mlp(channels + self.dir_encoding.out_dim, width, depth, 3)

    def set_grid(self, name: str, values: Tensor) -> None:
        """Install ``values`` as the grid parameter ``name``, tagged with its lr scale."""
        param = nn.Parameter(values)
        param.lr_scale = self.grid_lr_scale
        setattr(self, name, param)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Current vertices per axis (X, Y, Z)."""
        return tuple(self.density_grid.shape[1:])

    def resolution_at(self, step: int) -> int:
        """The grids' resolution (longest side) after ``step`` training steps."""
        return self.resolutions[sum(1 for s in self.upscale_steps if s <= step)]

    def corners(self, positions: Tensor) -> Corners:
        """Corner voxels of world positions, sorted by voxel when gradients will flow."""
        sort = torch.is_grad_enabled() and self.density_grid.requires_grad
        return corners(positions, self.low, self.high, self.shape, sort=sort)

    def activate(self, raw: Tensor, at: Corners) -> Tensor:
        """Density [N, 1] from interpolated raw values; zero outside the box."""
        return F.softplus(raw + self.shift) * (at.inside[:, None] / self.voxel_size)

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions [N, 3] (static scene: ``times`` unused)."""
        at = self.corners(positions)
        return self.activate(interpolate(self.density_grid, at), at)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density [N, 1] and view-dependent colour [N, 3] at the samples."""
        at = self.corners(samples.positions)
        density = self.activate(interpolate(self.density_grid, at), at)
        features = interpolate(self.feature_grid, at)
        directions = samples.directions
        if self.color == "sh":
            rgb = sh_color(features, directions)
        else:
            encoded = torch.cat([features, self.dir_encoding(directions)], dim=-1)
            rgb = torch.sigmoid(self.rgb_net(encoded))
        return {"density": density, "rgb": rgb}

    @torch.no_grad()
    def upscale(self, resolution: int) -> bool:
        """Resample both grids to ``resolution``; True when their shape changed."""
        shape = grid_shape(self.extent, resolution)
        if shape == self.shape:
            return False
        for name in GRIDS:
            self.set_grid(name, resample(getattr(self, name), shape))
        return True

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Resize the grids to the checkpoint's shapes first (it may be at another stage)."""
        for name in GRIDS:
            saved = state_dict.get(prefix + name)
            current = getattr(self, name)
            if saved is not None and saved.dim() == 4 and saved.shape[0] == current.shape[0]:
                if saved.shape != current.shape:
                    fresh = torch.empty(saved.shape, dtype=current.dtype, device=current.device)
                    self.set_grid(name, fresh)
        super()._load_from_state_dict(state_dict, prefix, *args)
