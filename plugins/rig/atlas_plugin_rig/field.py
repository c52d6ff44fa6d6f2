"""RigField: a point-based radiance field with learned point positions and features."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import Field, PositionalEncoding, RaySamples, mlp, tag_parameter, trunc_exp
from atlas_plugin_rig.interpolate import idw_weights, interpolate
from atlas_plugin_rig.layout import Layout, grid_counts, initial_points, spacing
from atlas_plugin_rig.neighbours import BucketGrid

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

GEOMETRY = 15  # features the density MLP hands to the colour MLP (as Instant-NGP)
DENSITY_SHIFT = -1.0  # raw density offset: a faint, even fog at the start
FEATURE_STD = 0.1  # initial spread of the point features
EPS = 1e-3  # distance floor of the inverse-distance weights, in point spacings
LAYOUTS = ("grid", "random")
MAX_NEIGHBOURS = 16  # the 27 cells searched around a sample hold about 27 points


class RigField(Field):
    """``points`` rig points with learned positions p_i [N, 3] and features f_i [N, F].

    A sample x takes its ``neighbours`` nearest points (searched in the 27 cells around
    it of a bucket grid with about one point per cell), averages their features with
    inverse-distance weights (Point-NeRF, Xu et al. 2022, sec. 3.2) and decodes them:
    an MLP of ``depth`` x ``width`` gives the density (truncated exp) and ``GEOMETRY``
    features, a one-layer MLP of those (and, with ``view_dependent``, the direction
    encoded at ``dir_frequencies``) the sigmoid colour. The field resolves nothing
    finer than a point spacing, so it asks occupancy-grid sampling to march ``step``
    spacings at a time (``sample_step``, in world units).

    Points start over the scene box under the run's seed: a jittered lattice
    (``layout="grid"``) or uniform (``"random"``). Features and positions learn at
    ``feature_lr_scale`` and ``position_lr_scale`` times ``train.lr``; a position scale
    of 0 keeps the points where they start.
    """

    def __init__(
        self,
        context: BuildContext,
        points: int = 65536,
        features: int = 16,
        neighbours: int = 8,
        layout: Layout = "grid",
        width: int = 64,
        depth: int = 1,
        view_dependent: bool = True,
        dir_frequencies: int = 4,
        step: float = 0.25,
        feature_lr_scale: float = 40.0,
        position_lr_scale: float = 0.1,
    ):
        super().__init__()
        check_options(points, features, neighbours, layout, width, depth, dir_frequencies,
                      step, feature_lr_scale, position_lr_scale)  # fmt: skip
        bounds = context.scene.bounds
        low = torch.tensor(bounds[:3], dtype=torch.float32)
        high = torch.tensor(bounds[3:], dtype=torch.float32)
        if not bool((high > low).all()):
            raise ValueError(f"scene bounds {bounds} enclose no volume")
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        extent = tuple((high - low).tolist())
        self.spacing = spacing(extent, points)
        self.cells = grid_counts(extent, points)  # bucket grid: about one point per cell
        self.sample_step = step * self.spacing  # HasSampleStep: the occupancy sampler's step
        self.neighbours = neighbours
        self.view_dependent = view_dependent
        generator = torch.Generator().manual_seed(context.config.seed)
        start = initial_points(low, high, points, layout, generator)
        self.positions = nn.Parameter(start, requires_grad=position_lr_scale > 0)
        if position_lr_scale > 0:
            tag_parameter(self.positions, lr_scale=position_lr_scale)
        values = FEATURE_STD * torch.randn(points, features, generator=generator)
        # a batch touches a fraction of the points: sparse rows and masked Adam (as DVGO)
        self.features = tag_parameter(nn.Parameter(values), lr_scale=feature_lr_scale,
                                      masked_updates=True)  # fmt: skip
        self.density_net = mlp(features, width, depth, 1 + GEOMETRY)
        directions = 0
        if view_dependent:
            self.dir_encoding = PositionalEncoding(3, dir_frequencies)
            directions = self.dir_encoding.out_dim
        self.rgb_net = mlp(GEOMETRY + directions, width, 1, 3)

    def bucket(self) -> BucketGrid:
        """The points sorted into the cells of the bucket grid (re-sorted as they move)."""
        return BucketGrid(self.positions.detach(), self.low, self.high, self.cells)

    def point_features(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Interpolated features [S, F] at world positions, and whether any point was
        found [S, 1] (False only where points have left a sample's whole neighbourhood)."""
        found = self.bucket().query(positions.detach(), self.neighbours)
        weights = idw_weights(positions, self.positions, found, EPS * self.spacing)
        covered = found.valid.any(dim=1, keepdim=True)
        sparse = self.training and torch.is_grad_enabled() and self.features.requires_grad
        return interpolate(self.features, found, weights, sparse), covered

    def geometry(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Density [S, 1] >= 0 and geometry features [S, GEOMETRY] at world positions."""
        features, covered = self.point_features(positions)
        raw = self.density_net(features)
        density = trunc_exp(raw[:, :1] + DENSITY_SHIFT) * covered
        return density, raw[:, 1:]

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions [N, 3] (a static field: ``times`` unused)."""
        return self.geometry(positions)[0]

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density [N, 1] and colour [N, 3] at the samples."""
        density, geometry = self.geometry(samples.positions)
        if self.view_dependent:
            geometry = torch.cat([geometry, self.dir_encoding(samples.directions)], dim=-1)
        return {"density": density, "rgb": torch.sigmoid(self.rgb_net(geometry))}


def check_options(
    points: int,
    features: int,
    neighbours: int,
    layout: str,
    width: int,
    depth: int,
    dir_frequencies: int,
    step: float,
    feature_lr_scale: float,
    position_lr_scale: float,
) -> None:
    """Raise ValueError (a one-line config error) for an option out of range."""
    if points < 1 or features < 1 or neighbours < 1:
        raise ValueError("points, features and neighbours must be >= 1")
    if neighbours > min(points, MAX_NEIGHBOURS):
        raise ValueError(f"neighbours must be at most {MAX_NEIGHBOURS} and at most points")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if width < 1 or depth < 1 or dir_frequencies < 0:
        raise ValueError("width and depth must be >= 1 and dir_frequencies >= 0")
    if not 0 < step < float("inf"):
        raise ValueError(f"step must be > 0 (point spacings), got {step}")
    if not 0 < feature_lr_scale < float("inf"):
        raise ValueError(f"feature_lr_scale must be > 0, got {feature_lr_scale}")
    if not 0 <= position_lr_scale < float("inf"):
        raise ValueError(
            f"position_lr_scale must be >= 0 (0: fixed points), got {position_lr_scale}"
        )
