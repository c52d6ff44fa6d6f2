"""VoxelField: DVGO's dense density and colour-feature grids (Sun et al. 2022)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.api import (
    Field,
    PositionalEncoding,
    RaySamples,
    frustum_multisamples,
    mlp,
    tag_parameter,
)
from atlas_core.api import grid as grids
from atlas_plugin_voxel.sh import SH_COEFFICIENTS, sh_color

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

GRIDS = ("density_grid", "feature_grid")
DEFAULTS = {"resolution": 160, "upscale_steps": (50, 100, 150)}
# Forward-facing captures in NDC see each voxel in few rays of a short budget: a coarser
# grid, upscaled later, learns more from them (flower, 300 s: 21.42 dB at 160 and steps
# 50/100/150, 22.38 at 128 and 150/400/700, 22.91 at 112; benchmarks/results/real-*.md)
SPACE_DEFAULTS = {"ndc": {"resolution": 112, "upscale_steps": (150, 400, 700)}}


# antialias(0): Zip-NeRF's 6 points; one level has no finer levels to weigh down, so the
# points are its only filter (multiscale lego, 300 s: 27.49 dB alone, 29.53 with 6)
MULTISAMPLES = 6


class VoxelField(Field):
    """Dense voxel radiance field of DVGO (Sun et al. 2022, "Direct Voxel Grid Optimization").

    A 1-channel density grid, trilinearly interpolated and then activated
    (post-activation, DVGO sec. 4.1): ``density = softplus(raw + shift) / unit``, in units
    of one voxel of the scene box at ``resolution`` as in DVGO, so that raw values of a
    few units already make a voxel opaque; the shift makes the initial opacity across one
    voxel ``alpha_init`` (DVGO eq. 9). Colour is
    ``color="mlp"``: a ``features``-channel grid decoded by a small MLP of the features and
    the encoded view direction (DVGO sec. 5.1), or ``color="sh"``: degree-2 spherical
    harmonics, 27 channels per voxel, no MLP (as Plenoxels). Grids start at
    ``initial_resolution`` and are upscaled at each of ``upscale_steps`` until they reach
    ``resolution`` (progressive scaling, DVGO sec. 5.2), vertices per axis along the
    longest side of the grid's box. Left unset, both follow the ray space
    (``SPACE_DEFAULTS``): 160 and steps 50/100/150, or 112 and 150/400/700 in NDC.

    The box starts as the scene box. At the first upscale, with ``box_threshold`` > 0,
    it shrinks to the vertices whose opacity across one voxel exceeds that threshold, plus
    a margin of two voxels (DVGO's fine-stage bounding box from the coarse density), so
    the same number of voxels resolves the content more finely.

    Grids are stored channels-last, [X*Y*Z, C]; while training they receive sparse
    gradients (only the rows a batch touched) and are tagged for masked Adam updates.
    ``grid_lr_scale``: the grids' learning rate as a multiple of ``train.lr`` (their
    ``lr_scale`` tag); DVGO trains its grids at lr 0.1 and its MLP at 1e-3.

    ``antialias(k)`` (the ``mip`` plugin calls it) averages the raw grid values of ``k``
    points (0: ``MULTISAMPLES``) spread over each sample's frustum (Zip-NeRF's
    multisampling, Barron et al. 2023); one level has no finer levels to weigh down, so
    that part of Zip-NeRF does not apply. ``density()`` still reads single points.

    ``kernel``: the grid lookups run the core's fused C++ kernel (``auto``, when it
    builds; ``cpp``) or its PyTorch reference (``torch``); see ``grid.sample``.
    """

    def __init__(
        self,
        context: BuildContext,
        resolution: int | None = None,
        initial_resolution: int = 64,
        upscale_steps: tuple[int, ...] | None = None,
        features: int = 12,
        color: Literal["mlp", "sh"] = "mlp",
        width: int = 64,
        depth: int = 2,
        dir_frequencies: int = 4,
        alpha_init: float = 1e-2,
        grid_lr_scale: float = 80.0,
        box_threshold: float = 1e-3,
        kernel: str = "auto",
    ):
        super().__init__()
        preset = SPACE_DEFAULTS.get(context.scene.space, DEFAULTS)
        resolution = preset["resolution"] if resolution is None else resolution
        upscale_steps = preset["upscale_steps"] if upscale_steps is None else upscale_steps
        grids.check_schedule(initial_resolution, resolution, tuple(upscale_steps))
        if features < 1 or width < 1 or depth < 1 or dir_frequencies < 0:
            raise ValueError("features, width and depth must be >= 1, dir_frequencies >= 0")
        if not 0 < alpha_init < 1 or grid_lr_scale <= 0:
            raise ValueError("need 0 < alpha_init < 1 and grid_lr_scale > 0")
        if not 0 <= box_threshold < 1:
            raise ValueError("need 0 <= box_threshold < 1")
        grids.check_kernel(kernel)
        self.kernel = kernel
        bounds = context.scene.bounds
        self.register_buffer("low", torch.tensor(bounds[:3], dtype=torch.float32))
        self.register_buffer("high", torch.tensor(bounds[3:], dtype=torch.float32))
        if min(self.extent) <= 0:
            raise ValueError(f"scene bounds {bounds} enclose no volume")
        self.upscale_steps = tuple(upscale_steps)
        self.resolutions = grids.schedule(initial_resolution, resolution, len(self.upscale_steps))
        self.grid_lr_scale = float(grid_lr_scale)
        self.box_threshold = float(box_threshold)
        # density unit: one voxel of the scene box at the final resolution (DVGO)
        self.unit = max(self.extent) / (resolution - 1)
        # 1 - exp(-softplus(shift)) = alpha_init across one voxel (DVGO eq. 9)
        self.shift = math.log(math.expm1(-math.log1p(-alpha_init)))
        self.color = color
        self.multisamples = 0  # 0: point samples; k: Zip-NeRF's k points per frustum
        shape = grids.grid_shape(self.extent, self.resolutions[0])
        self.register_buffer("dims", torch.tensor(shape))
        self.register_buffer("fitted", torch.tensor(box_threshold == 0))
        channels = 3 * SH_COEFFICIENTS if color == "sh" else features
        voxels = math.prod(shape)
        self.set_grid("density_grid", torch.zeros(voxels, 1), shape)
        self.set_grid("feature_grid", torch.zeros(voxels, channels), shape)
        if color == "mlp":
            self.dir_encoding = PositionalEncoding(3, dir_frequencies)
            self.rgb_net = mlp(channels + self.dir_encoding.out_dim, width, depth, 3)

    @property
    def extent(self) -> tuple[float, float, float]:
        """Edge lengths of the grid's box."""
        return tuple((self.high - self.low).tolist())

    def set_grid(self, name: str, values: Tensor, shape: grids.Shape) -> None:
        """Install ``values`` [X*Y*Z, C] of ``shape`` vertices as the grid parameter ``name``,
        with its tags (learning-rate scale, masked Adam, and the shape for uniform Adam)."""
        param = nn.Parameter(values.contiguous())
        # a batch touches few voxels: DVGO's masked Adam; the shape for uniform Adam
        tag_parameter(param, lr_scale=self.grid_lr_scale, masked_updates=True, grid_shape=shape)
        setattr(self, name, param)

    @property
    def shape(self) -> grids.Shape:
        """Current vertices per axis (X, Y, Z)."""
        return tuple(self.dims.tolist())

    def resolution_at(self, step: int) -> int:
        """The grids' resolution (longest side) after ``step`` training steps."""
        return self.resolutions[sum(1 for s in self.upscale_steps if s <= step)]

    def corners(self, positions: Tensor) -> grids.Corners:
        """Corner vertices of world positions."""
        return grids.corners(positions, self.low, self.high, self.shape)

    def lookup(self, grid: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Interpolated grid values [N, C] at world positions and whether each is in the
        box [N]; sparse gradients while training (the fused C++ lookup on a CPU)."""
        sparse = self.training and torch.is_grad_enabled() and grid.requires_grad
        return grids.sample(grid, positions, self.low, self.high, self.shape, sparse, self.kernel)

    def activate(self, raw: Tensor, inside: Tensor) -> Tensor:
        """Density [N, 1] from interpolated raw values; zero outside the box."""
        return F.softplus(raw + self.shift) * (inside[:, None] / self.unit)

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions [N, 3] (static scene: ``times`` unused)."""
        return self.activate(*self.lookup(self.density_grid, positions))

    def antialias(self, multisamples: int = 0) -> None:
        """Average the grids over ``multisamples`` points per frustum (Zip-NeRF)."""
        if multisamples < 0:
            raise ValueError(f"multisamples must be >= 0, got {multisamples}")
        self.multisamples = multisamples or MULTISAMPLES

    def footprint_values(self, samples: RaySamples) -> tuple[Tensor, Tensor]:
        """Raw density [N, 1] and features [N, C] averaged over each sample's frustum."""
        points, _ = frustum_multisamples(samples, self.multisamples, self.training)
        count, per = points.shape[:2]
        points = points.view(-1, 3)
        raw = self.lookup(self.density_grid, points)[0].view(count, per, 1).mean(dim=1)
        channels = self.feature_grid.shape[1]
        features = self.lookup(self.feature_grid, points)[0]
        return raw, features.view(count, per, channels).mean(dim=1)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density [N, 1] and view-dependent colour [N, 3] at the samples."""
        positions = samples.positions
        if self.multisamples:
            raw, features = self.footprint_values(samples)
            density = self.activate(raw, self.corners(positions).inside)
        else:
            density = self.activate(*self.lookup(self.density_grid, positions))
            features = self.lookup(self.feature_grid, positions)[0]
        directions = samples.directions
        if self.color == "sh":
            rgb = sh_color(features, directions)
        else:
            encoded = torch.cat([features, self.dir_encoding(directions)], dim=-1)
            rgb = torch.sigmoid(self.rgb_net(encoded))
        return {"density": density, "rgb": rgb}

    def resize(self, shape: grids.Shape, low: Tensor, high: Tensor) -> None:
        """Resample both grids to ``shape`` vertices over the box ``[low, high]``."""
        if low.equal(self.low) and high.equal(self.high):
            for name in GRIDS:
                self.set_grid(name, grids.resample(getattr(self, name), self.shape, shape), shape)
        else:  # a new box: read the old grids at the new vertices
            points = grids.vertices(low, high, shape)
            at = self.corners(points)
            for name in GRIDS:
                self.set_grid(name, grids.interpolate(getattr(self, name), at), shape)
            self.low.copy_(low)
            self.high.copy_(high)
        self.dims.copy_(torch.tensor(shape))

    @torch.no_grad()
    def fit_box(self) -> bool:
        """Shrink the box to the vertices above ``box_threshold`` opacity; True if it moved."""
        self.fitted.fill_(True)
        spacing = (self.high - self.low) / (self.dims - 1).to(self.low.dtype)
        across = float(spacing.max()) / self.unit  # one voxel, in density units
        alpha = -torch.expm1(-F.softplus(self.density_grid[:, 0] + self.shift) * across)
        ijk = (alpha > self.box_threshold).view(self.shape).nonzero()
        if not len(ijk):
            return False
        first = (ijk.amin(dim=0) - 2).clamp_min(0)
        last = torch.minimum(ijk.amax(dim=0) + 2, self.dims - 1)
        low, high = self.low + first * spacing, self.low + last * spacing
        if low.equal(self.low) and high.equal(self.high):
            return False
        extent = tuple((high - low).tolist())
        self.resize(grids.grid_shape(extent, max(self.shape)), low, high)
        return True

    @torch.no_grad()
    def grow(self, step: int) -> bool:
        """Fit the box (once, at the first upscale) and upscale on schedule; True on change."""
        changed = False
        if not bool(self.fitted) and self.upscale_steps and step >= self.upscale_steps[0]:
            changed = self.fit_box()
        shape = grids.grid_shape(self.extent, self.resolution_at(step))
        if shape != self.shape:
            self.resize(shape, self.low, self.high)
            changed = True
        return changed

    def upscale(self, resolution: int) -> bool:
        """Resample both grids to ``resolution`` over the current box; True on change."""
        shape = grids.grid_shape(self.extent, resolution)
        if shape == self.shape:
            return False
        with torch.no_grad():
            self.resize(shape, self.low, self.high)
        return True

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Resize the grids to the checkpoint's shapes first (it may be at another stage)."""
        current = {name: getattr(self, name) for name in GRIDS}
        grids.fit_saved_grids(state_dict, prefix, current, self.set_grid)
        super()._load_from_state_dict(state_dict, prefix, *args)
