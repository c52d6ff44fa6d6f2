"""Occupancy-grid sampling in plain PyTorch (Instant-NGP, Mueller et al. 2022, sec. 4;
NerfAcc, Li et al. 2023).

A binary grid over the scene box marks cells whose density is above a threshold. Rays
march in fixed steps tied to the grid; samples in empty cells are dropped, and so are
samples behind the point where the transmittance falls below ``early_stop``. The grid
is refreshed from the field's ``density()`` every ``update_every`` training steps.

The grid lives where the fields' positions do: world space, NDC (forward-facing scenes),
or Mip-NeRF 360's contracted ``[-2, 2]^3`` (unbounded scenes). Contracted rays march in
equal steps of the warped distance ``s`` (``atlas_core.nerf.contraction``), so samples
thin out with distance as the contracted cells do (as NerfAcc marches contracted grids).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from atlas_core.capabilities import HasSampleStep, first_with, has_density
from atlas_core.nerf import native
from atlas_core.nerf.compositing import segment_exclusive_cumsum
from atlas_core.nerf.contraction import LINEAR_REACH, distance_to_s, s_to_distance, uncontract
from atlas_core.nerf.rays import RayBundle, RaySamples, clip_to_box
from atlas_core.nerf.samplers import Sampler

if TYPE_CHECKING:
    from atlas_core.build import BuildContext
    from atlas_core.config import RunConfig
    from atlas_core.nerf.fields import Field

__all__ = ["COARSE", "OccupancyGrid", "OccupancySampler", "prefer_occupancy"]

COARSE = 4
"""Fine steps per coarse step, and fine cells per coarse cell edge, when marching."""

FIRST_ROUND = 16
"""Samples per ray the culling pass evaluates first by default (``first_round``); each
later round takes half as many again (``ROUND_GROWTH``), of the rays still visible."""
ROUND_GROWTH = 1.5


class OccupancyGrid(torch.nn.Module):
    """A cubic grid of cell opacities over an axis-aligned box, with its binary mask.

    ``contracted``: the box is Mip-NeRF 360's ``[-2, 2]^3``. Cells outside the radius-2
    ball hold no point of space and are never occupied; a cell's opacity is that of the
    world step a march takes there (``dt/ds = (t/T)^2`` past ``T``, ``t`` taken as the
    cell's uncontracted radius), while the mean that relaxes the threshold uses the plain
    ``s``-step opacity, so far cells cannot lift it above every near cell.
    """

    def __init__(self, bounds: tuple[float, ...], resolution: int, contracted: bool = False):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("low", torch.tensor(bounds[:3], dtype=torch.float32))
        self.register_buffer("high", torch.tensor(bounds[3:], dtype=torch.float32))
        cells = resolution**3
        self.register_buffer("opacity", torch.zeros(cells))
        self.register_buffer("mask", torch.ones(cells, dtype=torch.bool))
        scale, valid = torch.ones(cells), torch.ones(cells, dtype=torch.bool)
        if contracted:
            centres = self.cell_centres(torch.arange(cells), jitter=False)
            valid = centres.norm(dim=-1) < 2.0
            radius = uncontract(centres).norm(dim=-1)
            scale = (radius / LINEAR_REACH).clamp(1.0, 1e4).square()
        self.register_buffer("step_scale", scale, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.mask &= valid
        self.refresh_derived()

    def refresh_derived(self) -> None:
        """Recompute the occupied bounding box and the dilated coarse mask."""
        res = self.resolution
        cells = self.mask.view(res, res, res)
        ijk = cells.nonzero()
        if ijk.numel():
            first, last = ijk.amin(dim=0), ijk.amax(dim=0) + 1
        else:
            first = last = torch.zeros(3, dtype=torch.long, device=self.mask.device)
        self.occupied_low = self.low + (first - 1).clamp_min(0).float() * self.cell_size
        self.occupied_high = self.low + (last + 1).clamp_max(res).float() * self.cell_size
        factor = COARSE
        coarse = F.max_pool3d(cells[None, None].float(), factor, factor, ceil_mode=True)
        self.coarse_mask = F.max_pool3d(coarse, 3, 1, padding=1)[0, 0] > 0

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super()._load_from_state_dict(*args, **kwargs)
        self.refresh_derived()

    @property
    def cell_size(self) -> Tensor:
        """Edge lengths [3] of one cell."""
        return (self.high - self.low) / self.resolution

    def cell_index(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Flat cell index [N] of positions, and whether each is inside the box."""
        unit = (positions - self.low) / (self.high - self.low)
        inside = ((unit >= 0) & (unit < 1)).all(dim=-1)
        ijk = (unit * self.resolution).long().clamp(0, self.resolution - 1)
        res = self.resolution
        return (ijk[:, 0] * res + ijk[:, 1]) * res + ijk[:, 2], inside

    def occupied(self, positions: Tensor) -> Tensor:
        """Boolean [N]: inside the box and in an occupied cell."""
        index, inside = self.cell_index(positions)
        return inside & self.mask[index]

    def coarse_occupied(self, positions: Tensor) -> Tensor:
        """Boolean [N]: within one coarse cell (COARSE^3 cells) of an occupied cell."""
        unit = (positions - self.low) / (self.high - self.low)
        size = self.coarse_mask.shape[0]
        ijk = (unit * (self.resolution / COARSE)).long().clamp(0, size - 1)
        return self.coarse_mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]]

    def cell_centres(self, index: Tensor, jitter: bool) -> Tensor:
        """World positions [N, 3] in cells ``index``: centres, or random points in them."""
        res = self.resolution
        ijk = torch.stack([index // (res * res), (index // res) % res, index % res], dim=-1)
        offset = torch.rand_like(ijk, dtype=torch.float32) if jitter else 0.5
        return self.low + (ijk.float() + offset) * self.cell_size

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[Tensor], Tensor],
        step_size: float,
        decay: float,
        threshold: float,
        all_cells: bool,
        chunk: int = 65536,
    ) -> None:
        """Refresh opacities from ``density_fn`` (EMA with ``decay``) and the mask.

        Warm-up updates visit every cell; later ones a random quarter of the cells plus
        every occupied cell, as in Instant-NGP.
        """
        cells = self.opacity.numel()
        if all_cells:
            index = torch.arange(cells, device=self.opacity.device)
        else:
            sampled = torch.randint(cells, (cells // 4,), device=self.opacity.device)
            index = torch.unique(torch.cat([sampled, self.mask.nonzero().view(-1)]))
        fresh = torch.empty(index.numel(), device=self.opacity.device)
        for start in range(0, index.numel(), chunk):
            part = index[start : start + chunk]
            density = density_fn(self.cell_centres(part, jitter=True)).view(-1)
            fresh[start : start + chunk] = density * step_size * self.step_scale[part]
        decayed = self.opacity[index] * decay
        self.opacity[index] = torch.maximum(decayed, fresh)
        mean = float((self.opacity / self.step_scale)[self.valid].mean())
        cut = min(mean, threshold) * (1.0 - 1e-5)  # a uniform field (ties) is kept whole
        self.mask = (self.opacity >= cut) & self.valid
        if not self.mask.any():  # a uniform field: keep marching everywhere, never stall
            self.mask = self.valid.clone()
        self.refresh_derived()


class OccupancySampler(Sampler):
    """Marching through an occupancy grid with early termination, packed samples.

    ``step_size`` 0 means the field's ``sample_step`` (world units) when it, or a field it
    wraps, declares one (``HasSampleStep``),
    else a third of a cell's diagonal (a sixth in NDC, where ``t`` 0..1 crosses the
    box's depth of 2). In contracted scenes the step is in the warped distance ``s``.
    ``warmup_steps``: updates before then visit every cell and come every ``warmup_every``
    steps; later ones every ``update_every`` steps (Instant-NGP: 16 and 16).
    ``threshold``: a cell is occupied when its opacity (density times step) exceeds it
    (or the mean opacity, whichever is smaller).
    ``early_stop``, ``alpha_threshold``, ``weight_threshold``: samples behind a
    transmittance of ``early_stop``, with an opacity or a weight (transmittance times
    opacity, as DVGO's ``fast_color_thres``) below these are dropped before the field
    runs with gradients; a density pass without gradients finds them, in one pass or, with
    ``rounds``, in rounds along the rays that stop at each ray's ``early_stop`` (fewer
    evaluations where rays cross solid insides, as an SDF's; more calls where they do
    not: lego on ngp, about 20 samples a ray, took 11.4 ms a step in rounds, 6.8 in one
    pass), the first of ``first_round`` samples per ray (fewer suit a field whose density
    is dear and whose rays turn opaque within a few samples). ``kernel``: the
    march runs as one C++ pass per ray (``auto``, when it builds; ``cpp``) or in PyTorch
    (``torch``, the reference; also for contracted rays and off the CPU).
    """

    def __init__(
        self,
        context: BuildContext,
        resolution: int = 128,
        step_size: float = 0.0,
        update_every: int = 16,
        warmup_steps: int = 256,
        warmup_every: int = 16,
        decay: float = 0.95,
        threshold: float = 0.01,
        early_stop: float = 1e-4,
        alpha_threshold: float = 0.0,
        weight_threshold: float = 0.0,
        rounds: bool = False,
        first_round: int = FIRST_ROUND,
        kernel: str = "auto",
    ):
        super().__init__()
        native.prepare(kernel)  # a bad choice fails at build time; the build happens now
        if resolution < 2 or min(update_every, warmup_every) < 1 or not 0 <= decay <= 1:
            raise ValueError(
                "need resolution >= 2, update_every and warmup_every >= 1, 0 <= decay <= 1"
            )
        if step_size < 0 or first_round < 1:
            raise ValueError(f"need step_size >= 0 and first_round >= 1, got {step_size}, "
                             f"{first_round}")  # fmt: skip
        field = context.field_module()
        if not has_density(field):
            raise ValueError(
                f"field '{context.config.field.name}' ({type(field).__name__}) has no "
                "density() method, which the occupancy grid needs; use another sampler"
            )
        space = getattr(context.scene, "space", "box")
        self.grid = OccupancyGrid(context.scene.bounds, resolution, space == "contract")
        cell = float(self.grid.cell_size.norm())
        if space == "ndc":
            cell /= 2.0  # an NDC ray crosses z in [-1, 1] while t runs 0..1
        declared = first_with(field, HasSampleStep)  # the field's, or a wrapped field's
        self.step_size = step_size or (declared and float(declared.sample_step)) or cell / 3
        self.update_every, self.warmup_steps = update_every, warmup_steps
        self.warmup_every = warmup_every
        self.decay, self.threshold = decay, threshold
        self.early_stop, self.alpha_threshold = early_stop, alpha_threshold
        self.weight_threshold, self.rounds = weight_threshold, rounds
        self.first_round = first_round
        self.kernel = kernel
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def maybe_update(self, field: torch.nn.Module) -> None:
        """Refresh the grid every ``warmup_every`` training steps during the warm-up, then
        every ``update_every``."""
        step = int(self.steps)
        self.steps += 1
        warming = step < self.warmup_steps
        if step % (self.warmup_every if warming else self.update_every):
            return
        was_training = field.training
        field.eval()
        self.grid.update(
            field.density,
            self.step_size,
            self.decay,
            self.threshold,
            all_cells=warming,
        )
        field.train(was_training)

    def march(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Interval starts (ray index [M], s [M]) in occupied cells, ordered by ray; ``s``
        is the distance ``t``, or its warp for contracted rays (``distance_to_s``).

        Two levels, with no padding: rays are clipped to the occupied cells' bounding
        box (world or NDC); coarse steps of ``COARSE`` fine steps are kept when they lie
        within one coarse cell of an occupied cell; their fine steps are kept when in an
        occupied cell.
        """
        dt, grid = self.step_size, self.grid
        if rays.contracted:  # the box is in contracted space: no clipping in world space
            near, far = distance_to_s(rays.near), distance_to_s(rays.far)
        else:
            bounds = (*grid.occupied_low.tolist(), *grid.occupied_high.tolist())
            near, far = clip_to_box(rays.origins, rays.directions, rays.near, rays.far, bounds)
        start = near + (torch.rand_like(near) if self.training else 0.0) * dt  # [R, 1]
        start, length = start.view(-1), (far - start).view(-1)
        supported = (
            not rays.contracted
            and start.device.type == "cpu"
            and rays.origins.dtype == rays.directions.dtype == start.dtype == torch.float32
        )
        if native.use_native(self.kernel, supported, "occupancy march"):
            ops = native.grid_ops()
            origins, directions = rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3)
            masks = grid.mask, grid.coarse_mask, grid.low, grid.high
            return ops.march(origins, directions, start, length, dt, *masks, COARSE)
        device = start.device
        # coarse steps: one test per COARSE fine steps, against the dilated coarse mask
        counts = torch.ceil(length / (dt * COARSE)).long().clamp_min(0)
        ray = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        k = torch.arange(ray.numel(), device=device) - (torch.cumsum(counts, 0) - counts)[ray]
        centre = (k * COARSE + 0.5 * COARSE).to(start.dtype) * dt
        live = grid.coarse_occupied(self.points(rays, ray, start[ray] + centre))
        # fine steps of the live coarse steps, against the fine mask
        ray = ray[live].repeat_interleave(COARSE)
        step = k[live].repeat_interleave(COARSE) * COARSE
        step += torch.arange(ray.numel(), device=device) % COARSE
        rel = step.to(start.dtype) * dt  # interval start relative to ``start``
        keep = rel + 0.5 * dt <= length[ray]
        keep &= grid.occupied(self.points(rays, ray, start[ray] + rel + 0.5 * dt))
        ray = ray[keep]
        return ray, start[ray] + rel[keep]

    @staticmethod
    def points(rays: RayBundle, index: Tensor, s: Tensor) -> Tensor:
        """Grid-space positions at marching parameter ``s`` along rays ``index``."""
        return rays.points(index, s_to_distance(s) if rays.contracted else s)

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, dict[str, Tensor]]:
        """Occupied, not-yet-opaque intervals along each ray."""
        if self.training:
            self.maybe_update(field)
        ray_index, s = self.march(rays)
        if rays.contracted:  # the last step may pass far by half a step: end it at far
            far = rays.far.view(-1)[ray_index]
            starts = torch.minimum(s_to_distance(s), far)
            ends = torch.minimum(s_to_distance(s + self.step_size), far)
        else:
            starts, ends = s, s + self.step_size
        culling = self.early_stop > 0 or self.alpha_threshold > 0 or self.weight_threshold > 0
        if culling and ray_index.numel():
            keep = self.visible(field, rays, ray_index, starts, ends)
            ray_index, starts, ends = ray_index[keep], starts[keep], ends[keep]
        samples = RaySamples(rays, starts[:, None], ends[:, None], ray_index)
        return samples, {}

    @torch.no_grad()
    def visible(
        self, field: Field, rays: RayBundle, ray_index: Tensor, starts: Tensor, ends: Tensor
    ) -> Tensor:
        """Which intervals [M] to keep: a transmittance above ``early_stop`` and an opacity
        and a weight above their thresholds, by a density pass without gradients.

        With ``rounds`` the pass runs in rounds along the rays (``first_round`` samples,
        then ``ROUND_GROWTH`` times as many per round): a ray whose transmittance has
        fallen to ``early_stop`` is not evaluated further, so the density behind a surface
        (an object's inside, what it hides) costs nothing, as in Instant-NGP's march,
        which stops at that point. The kept samples are the same either way.
        """
        rays_count, total = len(rays), ray_index.numel()
        depth = starts.new_zeros(rays_count)  # optical depth of each ray's evaluated samples
        if not self.rounds:
            return self.judge(field, rays, ray_index, starts, ends, depth)
        counts = torch.bincount(ray_index, minlength=rays_count)
        slot = torch.arange(total, device=ray_index.device) - (counts.cumsum(0) - counts)[ray_index]
        keep = torch.zeros(total, dtype=torch.bool, device=ray_index.device)
        rest = torch.arange(total, device=ray_index.device)  # not yet evaluated
        low, size = 0, self.first_round
        while rest.numel():
            chosen = rest[slot[rest] < low + size]
            keep[chosen] = self.judge(
                field, rays, ray_index[chosen], starts[chosen], ends[chosen], depth
            )
            low += size
            size = round(size * ROUND_GROWTH)
            rest = rest[slot[rest] >= low]
            rest = rest[torch.exp(-depth[ray_index[rest]]) > self.early_stop]
        return keep

    def judge(
        self,
        field: Field,
        rays: RayBundle,
        ray: Tensor,
        starts: Tensor,
        ends: Tensor,
        depth: Tensor,
    ) -> Tensor:
        """Keep or drop each of these consecutive intervals per ray, given the optical
        ``depth`` [R] in front of them, which is advanced past them."""
        positions = rays.points(ray, 0.5 * (starts + ends))
        times = None if rays.times is None else rays.times[ray]
        tau = field.density(positions, times).view(-1) * (ends - starts)
        transmittance = torch.exp(-(segment_exclusive_cumsum(tau, ray, len(rays)) + depth[ray]))
        alpha = -torch.expm1(-tau)
        kept = transmittance > self.early_stop
        if self.alpha_threshold > 0:
            kept &= alpha > self.alpha_threshold
        if self.weight_threshold > 0:  # DVGO's fast_color_thres (Sun et al. 2022)
            kept &= transmittance * alpha > self.weight_threshold
        depth.index_add_(0, ray, tau)
        return kept


def prefer_occupancy(config: RunConfig, target_samples: int) -> None:
    """Choose the occupancy sampler and a steady sample budget per step for a grid field
    (Instant-NGP, sec. 4), unless the user chose a sampler, set options that the
    occupancy sampler does not take (e.g. ``sampler.samples``) or set the budget."""
    options = set(inspect.signature(OccupancySampler.__init__).parameters) - {"self", "context"}
    if "sampler" not in config.explicit and set(config.sampler.options) <= options:
        config.sampler.name = "occupancy"
    if "train.target_samples" not in config.explicit and not config.train.target_samples:
        config.train.target_samples = target_samples
