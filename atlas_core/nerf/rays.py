"""RayBundle (per ray) and RaySamples (packed intervals along rays)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from atlas_core.nerf.contraction import contract

__all__ = [
    "DisplacedSamples",
    "RayBundle",
    "RaySamples",
    "cat_rays",
    "clip_to_box",
    "samples_from_bins",
]


@dataclass
class RayBundle:
    """A batch of R rays; optional fields are None when absent.

    In world space ``directions`` are unit length. For forward-facing scenes in NDC
    (``atlas_core.nerf.ndc``) ``origins``/``directions`` are the NDC ray (``t`` runs 0 at
    the near plane to 1 at infinity) and ``viewdirs`` holds the unit world directions for
    shading. ``contracted``: sample positions are contracted (Mip-NeRF 360, see
    ``atlas_core.nerf.contraction``) into ``[-2, 2]^3`` before any field sees them.
    """

    origins: Tensor  # [R, 3]
    directions: Tensor  # [R, 3], unit length in world space
    near: Tensor  # [R, 1]
    far: Tensor  # [R, 1]
    radii: Tensor  # [R, 1], pixel-footprint radius at unit distance (for cones)
    camera_indices: Tensor  # [R], long
    times: Tensor | None = None  # [R, 1] in [0, 1]
    rgba: Tensor | None = None  # [R, 4] target, straight alpha
    # per-ray values a plugin's data kind adds (e.g. a light position), each [R, ...]
    extras: dict[str, Tensor] = field(default_factory=dict)
    viewdirs: Tensor | None = None  # [R, 3] unit world directions when ``directions`` are NDC
    contracted: bool = False

    def __len__(self) -> int:
        return self.origins.shape[0]

    @property
    def view_directions(self) -> Tensor:
        """Unit world directions [R, 3] for shading (``viewdirs`` in NDC)."""
        return self.directions if self.viewdirs is None else self.viewdirs

    def points(self, index: Tensor, t: Tensor) -> Tensor:
        """Sample positions [N, 3] at distances ``t`` [N] along rays ``index`` [N], in the
        space fields see (contracted when ``contracted``)."""
        points = self.origins[index] + self.directions[index] * t[:, None]
        return contract(points) if self.contracted else points

    def _map(self, apply: Callable[[Tensor], Tensor]) -> RayBundle:
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                values[f.name] = {key: apply(item) for key, item in value.items()}
            elif not isinstance(value, Tensor):  # flags such as ``contracted``
                values[f.name] = value
            else:
                values[f.name] = None if value is None else apply(value)
        return RayBundle(**values)

    def __getitem__(self, index: slice | Tensor) -> RayBundle:
        """Select rays by slice or index tensor."""
        return self._map(lambda value: value[index])

    def to(self, device: torch.device | str) -> RayBundle:
        """Copy to a device."""
        return self._map(lambda value: value.to(device))


def cat_rays(bundles: list[RayBundle]) -> RayBundle:
    """One bundle of the rays of ``bundles`` in order (the same optional fields in each)."""
    first, values = bundles[0], {}
    for f in fields(first):
        value = getattr(first, f.name)
        parts = [getattr(bundle, f.name) for bundle in bundles]
        if isinstance(value, dict):
            values[f.name] = {key: torch.cat([part[key] for part in parts]) for key in value}
        elif isinstance(value, Tensor):
            values[f.name] = torch.cat(parts)
        else:  # None, or flags such as ``contracted``
            values[f.name] = value
    return RayBundle(**values)


@dataclass
class RaySamples:
    """N intervals ``[t_start, t_end]`` along rays, packed and sorted by ray.

    ``ray_indices`` says which ray each interval belongs to; samples of one ray are
    contiguous and ordered by distance, so empty space costs nothing.
    """

    rays: RayBundle
    t_starts: Tensor  # [N, 1]
    t_ends: Tensor  # [N, 1]
    ray_indices: Tensor  # [N], long, non-decreasing

    @property
    def num_rays(self) -> int:
        """Number of rays the samples index into."""
        return len(self.rays)

    @property
    def origins(self) -> Tensor:
        """Per-sample ray origins [N, 3]."""
        return self.rays.origins[self.ray_indices]

    @property
    def directions(self) -> Tensor:
        """Per-sample unit world directions [N, 3] (for shading; NDC rays' ``viewdirs``)."""
        return self.rays.view_directions[self.ray_indices]

    @property
    def times(self) -> Tensor | None:
        """Per-sample times [N, 1], or None for static scenes."""
        times = self.rays.times
        return None if times is None else times[self.ray_indices]

    @property
    def deltas(self) -> Tensor:
        """Interval lengths [N, 1]."""
        return self.t_ends - self.t_starts

    @property
    def positions(self) -> Tensor:
        """Interval midpoints [N, 3] in the fields' space: world, NDC, or contracted."""
        mid = 0.5 * (self.t_starts + self.t_ends)
        return self.rays.points(self.ray_indices, mid.view(-1))

    def with_positions(self, positions: Tensor) -> RaySamples:
        """A copy whose ``positions`` are replaced (used by deformation wrappers)."""
        return DisplacedSamples(
            rays=self.rays,
            t_starts=self.t_starts,
            t_ends=self.t_ends,
            ray_indices=self.ray_indices,
            moved=positions,
        )


@dataclass
class DisplacedSamples(RaySamples):
    """RaySamples whose positions were moved, e.g. into a canonical frame."""

    moved: Tensor | None = None  # [N, 3]

    @property
    def positions(self) -> Tensor:
        """The moved positions [N, 3]."""
        return self.moved


def samples_from_bins(rays: RayBundle, edges: Tensor) -> RaySamples:
    """Pack dense per-ray bin edges [R, S+1] into RaySamples with S intervals per ray."""
    num_rays, num_edges = edges.shape
    starts = edges[:, :-1].reshape(-1, 1)
    ends = edges[:, 1:].reshape(-1, 1)
    indices = torch.arange(num_rays, device=edges.device).repeat_interleave(num_edges - 1)
    return RaySamples(rays=rays, t_starts=starts, t_ends=ends, ray_indices=indices)


def clip_to_box(
    origins: Tensor, directions: Tensor, near: Tensor, far: Tensor, bounds: tuple[float, ...]
) -> tuple[Tensor, Tensor]:
    """Shrink ``[near, far]`` to the part of each ray inside an axis-aligned box.

    Rays that miss the box get ``near == far`` (zero-length samples, nothing drawn).
    """
    low = torch.tensor(bounds[:3], device=origins.device, dtype=origins.dtype)
    high = torch.tensor(bounds[3:], device=origins.device, dtype=origins.dtype)
    inv = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (low - origins) * inv, (high - origins) * inv
    enter = torch.minimum(t0, t1).amax(dim=-1, keepdim=True)
    leave = torch.maximum(t0, t1).amin(dim=-1, keepdim=True)
    new_near = torch.maximum(near, enter)
    new_far = torch.minimum(far, leave)
    new_far = torch.maximum(new_far, new_near)
    return new_near, new_far
