"""A time-conditioned wrapper around any canonical field (D-NeRF, Pumarola et al. 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from atlas_core.api import Field, RayBundle, RaySamples, has_density
from atlas_plugin_dnerf.deformation import Deformation
from atlas_plugin_dnerf.kplanes import max_over_time


def sample_times(samples: RaySamples) -> Tensor:
    """Per-sample times [N, 1]; rays without a time show the canonical frame (t = 0)."""
    times = samples.times
    if times is None:
        return samples.t_starts.new_zeros(samples.t_starts.shape)
    return times


def moved_samples(samples: RaySamples, offsets: Tensor) -> RaySamples:
    """The samples as intervals of one ray each, whose origins are moved by ``offsets``.

    Moving the origin translates the whole interval (its midpoint and, for cone-aware
    encodings such as Mip-NeRF's, its frustum), so any canonical field sees the
    displaced samples however it reads them.
    """
    index = samples.ray_indices
    rays = samples.rays
    per_sample = RayBundle(
        origins=rays.origins[index] + offsets,
        directions=rays.directions[index],
        near=rays.near[index],
        far=rays.far[index],
        radii=rays.radii[index],
        camera_indices=rays.camera_indices[index],
        times=None if rays.times is None else rays.times[index],
        viewdirs=None if rays.viewdirs is None else rays.viewdirs[index],
        contracted=rays.contracted,
    )
    arange = torch.arange(index.shape[0], device=index.device)
    return RaySamples(per_sample, samples.t_starts, samples.t_ends, arange)


class DeformedField(Field):
    """``canonical(x + dx(x, t))``; adds ``deformation`` (and the variant's extras) to
    the outputs, plus the observed ``sample_positions`` and ``sample_times`` for losses."""

    def __init__(self, canonical: nn.Module, deformation: Deformation):
        super().__init__()
        self.canonical = canonical
        self.deformation = deformation

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Evaluate the canonical field at the deformed samples."""
        positions = samples.positions
        times = sample_times(samples)
        motion = self.deformation(positions, times)
        outputs = dict(self.canonical(moved_samples(samples, motion["deformation"])))
        outputs.update(motion)
        outputs["sample_positions"] = positions
        outputs["sample_times"] = times
        return outputs


class DeformedDensityField(DeformedField):
    """A DeformedField whose canonical field has ``density()`` (for occupancy grids)."""

    occupancy_times = 1  # set by deform(): times at which density(x) takes its maximum

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density at world positions and times; without times, at one random time in
        [0, 1] (occupancy grids refreshed over many steps then cover the whole motion),
        or the maximum over ``occupancy_times`` stratified times when that is above 1."""
        if times is None and self.occupancy_times > 1:
            return max_over_time(self.density, positions, self.occupancy_times)
        if times is None:
            times = torch.rand(positions.shape[0], 1, device=positions.device)
        moved = positions + self.deformation(positions, times)["deformation"]
        return self.canonical.density(moved)


def passes_position_gradient(canonical: nn.Module) -> bool:
    """Whether the field's outputs depend differentiably on the sample positions.

    A deformation learns only through that gradient; a field whose interpolation
    treats positions as constants would train its canonical scene and never the motion.
    """
    count = 8
    generator = torch.Generator().manual_seed(0)  # leaves the run's random stream alone
    origins = (0.1 * torch.randn(count, 3, generator=generator)).requires_grad_()
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    ones = torch.ones(count, 1)
    rays = RayBundle(origins, directions, ones * 0.0, ones * 0.2, ones * 1e-3,
                     torch.zeros(count, dtype=torch.long), times=ones * 0.5)  # fmt: skip
    samples = RaySamples(rays, ones * 0.0, ones * 0.1, torch.arange(count))
    with torch.enable_grad():
        outputs = canonical(samples)
        total = outputs["density"].sum() + outputs["rgb"].sum()
        if not total.requires_grad:
            return False
        (grad,) = torch.autograd.grad(total, origins, allow_unused=True)
    return grad is not None


def deform(
    canonical: nn.Module, deformation: Deformation, occupancy_times: int = 1
) -> DeformedField:
    """Wrap ``canonical``, keeping ``density()`` only when the canonical field has it."""
    if not has_density(canonical):
        return DeformedField(canonical, deformation)
    wrapped = DeformedDensityField(canonical, deformation)
    wrapped.occupancy_times = occupancy_times
    return wrapped
