"""VolSDF on dense voxel grids: an SDF that trains and meshes in minutes on a CPU.

The density is VolSDF's (Yariv et al. 2021, eq. 2-3): a scaled Laplace CDF of the
negated signed distance with a learned scale ``beta``. The SDF and a colour-feature
volume are dense grids read by trilinear interpolation, as in Voxurf (Wu et al. 2023,
"Voxurf: Voxel-based Efficient and Accurate Neural Surface Reconstruction") and DVGO
(Sun et al. 2022); the SDF gradient is the exact derivative of the interpolation, so the
eikonal term and the colour network's normal input train the grid without second
derivatives. Grids grow coarse to fine (DVGO sec. 5.2).

A dense SDF grid cannot carve free space quickly: only voxels at the current surface
receive gradients, so a starting sphere shrinks by about one voxel layer per many steps
while the colour network paints it instead. The default start therefore trains the
same grid as a DVGO density for ``warmup_steps`` (free space empties in a hundred or
two), then converts it once: the voxels opaque across one voxel (after a small blur),
with enclosed cavities filled and specks dropped and what the training rays see through
carved away (``carving``), become the inside of a signed distance given by two Euclidean
distance transforms; VolSDF training then refines that surface.
A longer warm-up is not better in general: the density learns the texture (darker patches
come out less opaque) and the conversion turns that into pits; an object's inside stays
faint, so its shell converts hollow unless pinholes are sealed (``seal``). The dtu plugin
chooses 300 steps for scans seen from one side, whose plate keeps a haze after 150.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from atlas_core.api import Field, PositionalEncoding, RaySamples, mlp, tag_parameter
from atlas_core.api import grid as grids
from atlas_plugin_volsdf.carving import carve, depth_maps
from atlas_plugin_volsdf.density import LaplaceDensity, laplace_cdf

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

GRIDS = ("sdf_grid", "feature_grid")
STEP_VOXELS = 0.3  # the occupancy sampler's default step, in final voxels


def occupancy_to_sdf(inside: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Signed distance (negative inside) at the vertices of a boolean occupancy volume.

    The surface is put half a voxel spacing outside the occupied vertices; distances come
    from exact Euclidean distance transforms (scipy), in world units.
    """
    if not inside.any():
        return np.full(inside.shape, 0.5 * min(spacing) + 1.0)
    if inside.all():
        return np.full(inside.shape, -0.5 * min(spacing) - 1.0)
    half = 0.5 * min(spacing)
    outside_distance = ndimage.distance_transform_edt(~inside, sampling=spacing)
    inside_distance = ndimage.distance_transform_edt(inside, sampling=spacing)
    return np.where(inside, half - inside_distance, outside_distance - half)


def clean_occupancy(opaque: np.ndarray, min_fraction: float, seal: int = 0) -> np.ndarray:
    """``opaque`` with enclosed cavities filled, also those open only through pinholes a
    closing of ``seal`` iterations shuts (their interiors are added, not the plugs), and
    components smaller than ``min_fraction`` of the largest dropped (warm-up floaters)."""
    solid = ndimage.binary_fill_holes(opaque)
    if seal:
        closed = ndimage.binary_closing(solid, iterations=seal)
        solid |= ndimage.binary_fill_holes(closed) & ~closed
    labels, count = ndimage.label(solid)
    if count <= 1:
        return solid
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.nonzero(sizes >= min_fraction * sizes.max())[0] + 1
    return np.isin(labels, keep)


class SDFGridField(Field):
    """Dense SDF grid + feature grid; outputs density, rgb, sdf, normals, sdf_gradients.

    ``init="density"`` (default): DVGO density for ``warmup_steps``, then the SDF of its
    opaque voxels (voxels whose opacity across one voxel, after a Gaussian
    ``opacity_blur`` of that many voxels, exceeds ``opacity``; components under
    ``min_component`` of the largest are dropped; cavities open only through pinholes
    that ``seal`` closing iterations shut are filled; vertices at least ``carve_views``
    training views, and a quarter of those that observe them, see in front of their
    median depths, on a lattice of every ``carve_stride``-th pixel (0: about 600k rays),
    are emptied; the SDF is then blurred by a Gaussian of ``blur`` voxels).
    ``init="sphere"``: the SDF of a sphere of ``radius`` around the box's centre (0: the
    largest inside the box) from the start. Every SDF read goes through ``smooth``
    binomial passes over the grid (Voxurf).
    Colour is a small MLP of the interpolated ``features``, the unit normal and the
    encoded view direction (the normal input as in IDR and VolSDF); ``detach_normals``
    stops the colour loss from reaching the SDF through that input, which on a grid
    otherwise carves dents where the texture is dark. Grids start at
    ``initial_resolution`` vertices along the box's longest side and are resampled at each
    of ``upscale_steps`` until they reach ``resolution``. Learning rates multiply
    ``train.lr``: ``density_lr_scale`` for the warm-up density (DVGO's 0.1-ish rate in
    raw units), ``sdf_lr_scale`` for the SDF (world units) and ``feature_lr_scale``. The
    Laplace scale is learned (VolSDF), capped by a ceiling that falls geometrically from
    ``beta_init`` to ``beta_final`` over ``anneal_steps`` from the SDF's start.
    """

    def __init__(
        self,
        context: BuildContext,
        resolution: int = 128,
        initial_resolution: int = 64,
        upscale_steps: tuple[int, ...] = (100, 200),
        features: int = 12,
        width: int = 64,
        depth: int = 2,
        dir_frequencies: int = 4,
        init: Literal["density", "sphere"] = "density",
        warmup_steps: int = 150,
        opacity: float = 0.2,
        min_component: float = 0.01,
        seal: int = 1,
        blur: float = 1.0,
        opacity_blur: float = 1.0,
        smooth: int = 1,
        detach_normals: bool = True,
        carve_views: int = 3,
        carve_stride: int = 0,
        alpha_init: float = 1e-2,
        radius: float = 0.0,
        beta_init: float = 0.02,
        beta_final: float = 0.0025,
        anneal_steps: int = 600,
        beta_min: float = 1e-3,
        density_lr_scale: float = 80.0,
        sdf_lr_scale: float = 0.2,
        feature_lr_scale: float = 20.0,
    ):
        super().__init__()
        grids.check_schedule(initial_resolution, resolution, tuple(upscale_steps))
        if features < 1 or width < 1 or depth < 1 or dir_frequencies < 0:
            raise ValueError("features, width and depth must be >= 1, dir_frequencies >= 0")
        if init not in ("density", "sphere"):
            raise ValueError(f"init must be 'density' or 'sphere', got {init!r}")
        if init == "density" and warmup_steps < 1:
            raise ValueError("init='density' needs warmup_steps >= 1")
        if not (0 < alpha_init < 1 and 0 < opacity < 1 and 0 <= min_component <= 1):
            raise ValueError("need 0 < alpha_init, opacity < 1 and 0 <= min_component <= 1")
        if carve_views < 0 or carve_stride < 0:
            raise ValueError(
                f"need carve_views >= 0, carve_stride >= 0, got {carve_views}, {carve_stride}"
            )
        if min(blur, opacity_blur) < 0 or smooth < 0 or seal < 0:
            raise ValueError(
                f"need blur, opacity_blur, smooth, seal >= 0, got {blur}, {opacity_blur}, "
                f"{smooth}, {seal}"
            )
        if radius < 0 or min(density_lr_scale, sdf_lr_scale, feature_lr_scale) <= 0:
            raise ValueError("need radius >= 0 and positive learning-rate scales")
        if not beta_min < beta_final <= beta_init or anneal_steps < 0:
            raise ValueError("need beta_min < beta_final <= beta_init and anneal_steps >= 0")
        bounds = context.scene.bounds
        self.register_buffer("low", torch.tensor(bounds[:3], dtype=torch.float32))
        self.register_buffer("high", torch.tensor(bounds[3:], dtype=torch.float32))
        extent = (self.high - self.low).tolist()
        if min(extent) <= 0:
            raise ValueError(f"scene bounds {bounds} enclose no volume")
        self.radius = radius or 0.5 * min(extent)
        self.warmup_steps = warmup_steps if init == "density" else 0
        self.opacity, self.min_component = opacity, min_component
        self.blur, self.opacity_blur = blur, opacity_blur
        self.seal = seal
        self.smooth, self.detach_normals = smooth, detach_normals
        self.carve_views, self.carve_stride = carve_views, carve_stride
        self._scene = context.scene if hasattr(context.scene, "split") else None
        self._smoothed: tuple[Any, Tensor | None] = (None, None)  # no-grad reads, per version
        # DVGO's density activation: softplus(raw + shift) / unit, unit one final voxel,
        # shift making the starting opacity across one voxel alpha_init (eq. 9)
        self.unit = max(extent) / (resolution - 1)
        self.shift = math.log(math.expm1(-math.log1p(-alpha_init)))
        self.upscale_steps = tuple(upscale_steps)
        self.resolutions = grids.schedule(initial_resolution, resolution, len(self.upscale_steps))
        self.register_buffer("is_sdf", torch.tensor(init == "sphere"))
        self.lr_scales = {
            "density": float(density_lr_scale),
            "sdf_grid": float(sdf_lr_scale),
            "feature_grid": float(feature_lr_scale),
        }
        shape = grids.grid_shape(tuple(extent), self.resolutions[0])
        self.register_buffer("dims", torch.tensor(shape))
        points = grids.vertices(self.low, self.high, shape)
        start = self.sphere_sdf(points) if init == "sphere" else torch.zeros(len(points), 1)
        self.set_grid("sdf_grid", start, shape)
        self.set_grid("feature_grid", torch.zeros(math.prod(shape), features), shape)
        self.laplace = LaplaceDensity(beta_init, beta_min)
        self.beta_init, self.beta_final, self.anneal_steps = beta_init, beta_final, anneal_steps
        self.register_buffer("beta_ceiling", torch.tensor(float(beta_init)))
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        self.rgb_net = mlp(features + 3 + self.dir_encoding.out_dim, width, depth, 3)

    @property
    def sample_step(self) -> float:
        """The ray-marching step the occupancy sampler takes by default: 0.3 final voxels,
        fine enough for the Laplace density's width of a few ``beta_final``."""
        return STEP_VOXELS * self.unit

    @property
    def centre(self) -> Tensor:
        """The scene box's centre (of the initial sphere)."""
        return 0.5 * (self.low + self.high)

    def sphere_sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] to the sphere of ``radius`` around the box's centre."""
        return (positions - self.centre).norm(dim=-1, keepdim=True) - self.radius

    def set_grid(self, name: str, values: Tensor, shape: grids.Shape) -> None:
        """Install ``values`` [X*Y*Z, C] as the grid parameter ``name``, tagged for the
        optimiser (learning-rate scale, masked Adam, the vertex shape for uniform Adam)."""
        param = nn.Parameter(values.contiguous())
        warm = name == "sdf_grid" and not bool(self.is_sdf)
        lr_scale = self.lr_scales["density" if warm else name]
        tag_parameter(param, lr_scale=lr_scale, masked_updates=True, grid_shape=shape)
        setattr(self, name, param)

    @property
    def shape(self) -> grids.Shape:
        """Current vertices per axis (X, Y, Z)."""
        return tuple(self.dims.tolist())

    @property
    def spacing(self) -> Tensor:
        """Vertex spacing [3] in world units."""
        return (self.high - self.low) / (self.dims - 1).to(self.low.dtype)

    @property
    def beta(self) -> float:
        """The current Laplace scale (the learned one, or the ceiling when lower)."""
        return float(self.scale().detach())

    def scale(self) -> Tensor:
        """The Laplace scale in use: the learned beta, at most the annealed ceiling."""
        return torch.minimum(self.laplace.beta, self.beta_ceiling)

    def ceiling_at(self, step: int) -> float:
        """The beta ceiling ``step`` steps after the SDF's start: beta_init to beta_final."""
        progress = min(max(step, 0) / self.anneal_steps, 1.0) if self.anneal_steps else 1.0
        return self.beta_init * (self.beta_final / self.beta_init) ** progress

    def corners(self, positions: Tensor) -> grids.Corners:
        """Corner vertices of world positions."""
        return grids.corners(positions, self.low, self.high, self.shape)

    def sparse(self, grid: Tensor) -> bool:
        """Whether lookups in ``grid`` (a parameter, not a smoothed copy) should give
        sparse (touched-rows) gradients."""
        return self.training and torch.is_grad_enabled() and grid.requires_grad and grid.is_leaf

    def lookup(self, grid: Tensor, at: grids.Corners) -> Tensor:
        """Interpolated values of ``grid``."""
        return grids.interpolate(grid, at, sparse=self.sparse(grid))

    def read(self, grid: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Interpolated values of ``grid`` at world positions and whether each is in the
        box: the core's fused C++ lookup where it can run (a leaf grid's sparse gradient,
        or none), else the reference."""
        return grids.sample(grid, positions, self.low, self.high, self.shape, self.sparse(grid))

    def sdf_values(self) -> Tensor:
        """The SDF grid in use: the stored one after ``smooth`` binomial passes, as
        Voxurf (Wu et al. 2023) smooths its SDF grid with a Gaussian before every lookup."""
        grid = self.sdf_grid
        if not self.smooth:
            return grid
        if torch.is_grad_enabled() and grid.requires_grad:
            return grids.blur(grid, self.shape, self.smooth)
        key = (grid.data_ptr(), grid._version, self.shape)  # optimiser steps bump _version
        if self._smoothed[0] != key:
            self._smoothed = (key, grids.blur(grid.detach(), self.shape, self.smooth))
        return self._smoothed[1]

    def read_sdf(self, positions: Tensor, sdf: Tensor, inside: Tensor) -> Tensor:
        """Signed distances [N, 1] read from the grid (``sdf``, zero outside the box);
        outside the box the distance to the box."""
        if bool(inside.all()):
            return sdf
        gap = (torch.maximum(self.low - positions, positions - self.high)).clamp_min(0.0)
        return torch.where(inside[:, None], sdf, gap.norm(dim=-1, keepdim=True))

    def read_gradient(self, at: grids.Corners, grid: Tensor) -> Tensor:
        """Spatial gradients [N, 3] of ``grid`` (zero outside the box)."""
        return grids.gradient(grid, at, sparse=self.sparse(grid))

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] at world positions [N, 3] (negative inside).

        During the density warm-up there is no SDF yet: the density's iso-surface at the
        conversion opacity stands in (negative where denser), so meshes still work.
        """
        if bool(self.is_sdf):
            return self.read_sdf(positions, *self.read(self.sdf_values(), positions))
        return self.opacity - self.voxel_opacity(self.read(self.sdf_grid, positions)[0])

    def sdf_gradient(self, positions: Tensor) -> Tensor:
        """The SDF's spatial gradient [N, 3] (empty [0, 3] during the density warm-up)."""
        if not bool(self.is_sdf):
            return positions.new_zeros(0, 3)
        return self.read_gradient(self.corners(positions), self.sdf_values())

    def warm_density(self, raw: Tensor, inside: Tensor) -> Tensor:
        """DVGO's post-activated density [N, 1] from raw values (zero outside the box)."""
        return F.softplus(raw + self.shift) * (inside[:, None] / self.unit)

    def voxel_opacity(self, raw: Tensor) -> Tensor:
        """Opacity across one current voxel of raw warm-up values."""
        across = float(self.spacing.max()) / self.unit
        return -torch.expm1(-F.softplus(raw + self.shift) * across)

    def laplace_density(self, sdf: Tensor) -> Tensor:
        """VolSDF eq. 2 with the scale in use."""
        beta = self.scale()
        return laplace_cdf(-sdf, beta) / beta

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions (static scene: ``times`` unused)."""
        if not bool(self.is_sdf):
            return self.warm_density(*self.read(self.sdf_grid, positions))
        return self.laplace_density(self.sdf(positions))

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density, colour, unit normals; once the SDF exists, the SDF and its gradients."""
        positions = samples.positions
        at = self.corners(positions)
        grid = self.sdf_values() if bool(self.is_sdf) else self.sdf_grid
        gradients = self.read_gradient(at, grid)
        out: dict[str, Tensor] = {}
        if bool(self.is_sdf):
            sdf = self.read_sdf(positions, self.lookup(grid, at), at.inside)
            out.update(density=self.laplace_density(sdf), sdf=sdf, sdf_gradients=gradients)
            normals = gradients
        else:  # density warm-up: normals point down the density gradient
            out["density"] = self.warm_density(*self.read(self.sdf_grid, positions))
            out["sdf_gradients"] = positions.new_zeros(0, 3)
            normals = -gradients
        normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        features, _ = self.read(self.feature_grid, positions)
        shading = normals.detach() if self.detach_normals else normals
        inputs = torch.cat([features, shading, self.dir_encoding(samples.directions)], dim=-1)
        out.update(rgb=torch.sigmoid(self.rgb_net(inputs)), normals=normals)
        return out

    def resolution_at(self, step: int) -> int:
        """The grids' resolution (longest side) after ``step`` training steps."""
        return self.resolutions[sum(1 for s in self.upscale_steps if s <= step)]

    @torch.no_grad()
    def to_sdf(self) -> None:
        """Replace the warm-up density by the SDF of its cleaned opaque voxels."""
        opacity = self.voxel_opacity(self.sdf_grid[:, 0]).view(self.shape).cpu().numpy()
        if self.opacity_blur:
            opacity = ndimage.gaussian_filter(opacity, self.opacity_blur)
        solid = clean_occupancy(opacity > self.opacity, self.min_component, self.seal)
        if self.carve_views and self._scene is not None and self._scene.space == "box":
            solid = clean_occupancy(self.carved(solid), self.min_component, self.seal)
        spacing = tuple(float(s) for s in self.spacing.tolist())
        sdf = occupancy_to_sdf(solid, spacing)
        if self.blur:
            sdf = ndimage.gaussian_filter(sdf, self.blur)
        sdf = torch.from_numpy(sdf).to(self.sdf_grid)
        self.is_sdf.fill_(True)
        self.set_grid("sdf_grid", sdf.reshape(-1, 1), self.shape)

    def carved(self, solid: np.ndarray) -> np.ndarray:
        """``solid`` without the vertices ``carve_views`` training views see in front of
        their rays' median depths through the warm-up density (``carving``)."""
        views = self._scene.split("train")
        step = float(self.spacing.min())
        maps = depth_maps(
            self.density, views, self._scene, step, self.carve_stride, self.low.device
        )
        points = grids.vertices(self.low, self.high, self.shape).double().cpu().numpy()
        return carve(solid, points, maps, self.carve_views, 2 * step)

    @torch.no_grad()
    def grow(self, step: int) -> bool:
        """Resample the grids on schedule, convert the warm-up density to an SDF at
        ``warmup_steps`` and lower the beta ceiling; True if the grids changed."""
        changed = False
        shape = grids.grid_shape(tuple((self.high - self.low).tolist()), self.resolution_at(step))
        if shape != self.shape:
            for name in GRIDS:
                self.set_grid(name, grids.resample(getattr(self, name), self.shape, shape), shape)
            self.dims.copy_(torch.tensor(shape))
            changed = True
        if not bool(self.is_sdf) and step >= self.warmup_steps:
            self.to_sdf()
            changed = True
        self.beta_ceiling.fill_(self.ceiling_at(step - self.warmup_steps))
        return changed

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Resize the grids to the checkpoint's shapes first (it may be at another stage)."""
        saved_stage = state_dict.get(prefix + "is_sdf")
        if saved_stage is not None:
            self.is_sdf.copy_(saved_stage)
        current = {name: getattr(self, name) for name in GRIDS}
        grids.fit_saved_grids(state_dict, prefix, current, self.set_grid)
        super()._load_from_state_dict(state_dict, prefix, *args)
        lr_scale = self.lr_scales["sdf_grid" if bool(self.is_sdf) else "density"]
        tag_parameter(self.sdf_grid, lr_scale=lr_scale)
