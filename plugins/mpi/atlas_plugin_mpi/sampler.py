"""The plane sampler: one interval per plane a ray crosses, from that plane to the next.

Each interval starts where the ray meets a plane of the run's MPI field and ends at the
next plane along the ray (the last one at most one plane gap further, within ``far``),
so the volume renderer composites the planes front to back (Zhou et al. 2018, eq. 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import RayBundle, RaySamples, Sampler
from atlas_plugin_mpi.field import MPIField
from atlas_plugin_mpi.samples import PlaneSamples

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

LAST_MIN = 1e-4  # the shortest interval given to the last plane of a ray


def find_mpi(field: nn.Module) -> MPIField | None:
    """The MPI field inside ``field`` (which may be wrapped, e.g. by D-NeRF)."""
    return next((m for m in field.modules() if isinstance(m, MPIField)), None)


class PlaneSampler(Sampler):
    """Intervals between consecutive plane hits of the run's MPI field."""

    def __init__(self, context: BuildContext):
        super().__init__()
        if find_mpi(context.field_module()) is None:
            raise ValueError("needs the mpi field (--set field=mpi)")

    def forward(self, rays: RayBundle, field: nn.Module) -> tuple[RaySamples, dict[str, Tensor]]:
        """Plane hits within each ray's [near, far], sorted along the ray."""
        mpi = find_mpi(field)
        t = mpi.geometry.intersect(rays.origins, rays.directions)
        t, order = torch.sort(t, dim=1)
        valid = (t >= rays.near) & (t <= rays.far)
        following = torch.cat([t[:, 1:], torch.full_like(t[:, :1], torch.inf)], dim=1)
        previous = torch.cat([t[:, :1], t[:, :-1]], dim=1)
        last_gap = torch.where(torch.isfinite(t - previous) & (t > previous), t - previous, 0.0)
        tail = torch.minimum(t + last_gap.clamp_min(LAST_MIN), rays.far.expand_as(t))
        following = torch.where(valid & (following <= rays.far), following, tail)
        following = torch.maximum(following, t + LAST_MIN * 0.5).where(valid, t)
        rows, cols = valid.nonzero(as_tuple=True)
        samples = PlaneSamples(
            rays=rays,
            t_starts=t[rows, cols][:, None],
            t_ends=following[rows, cols][:, None],
            ray_indices=rows,
            plane_indices=order[rows, cols],
        )
        return samples, {}
