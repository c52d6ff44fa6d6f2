"""The MPI field: D RGBA planes looked up by projecting samples into the reference camera.

Zhou et al. 2018, "Stereo Magnification", sec. 3: a scene is D fronto-parallel RGBA
layers rendered by alpha-over compositing (eq. 1 there). As a field, a sample is
projected into the reference camera to a plane coordinate and a texture coordinate;
the RGBA is read bilinearly within a plane. Samples of the ``mpi`` sampler lie on the
planes and span the interval to the next plane, and their density is chosen so that the
core's volume renderer reproduces alpha-over exactly: ``1 - exp(-sigma * delta) =
alpha``. Samples of other samplers see each plane as a slab one plane gap thick of
density ``-log(1 - alpha) / gap``, nearest or linear between planes (``between``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from atlas_core.api import Field, RaySamples, Views, tag_parameter
from atlas_plugin_mpi.geometry import PlaneGeometry, Reference, plane_geometry
from atlas_plugin_mpi.samples import PlaneSamples

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

Between = Literal["nearest", "linear"]
MAX_ALPHA = 1.0 - 1e-6  # keeps -log(1 - alpha) finite


def reachable_depth(views: Views, far: float) -> float:
    """The largest depth the reference camera's corner rays reach within ``far``."""
    corner = math.hypot(0.5 * views.width / views.focal, 0.5 * views.height / views.focal)
    return far / math.sqrt(1.0 + corner**2)


class MPIField(Field):
    """RGBA planes [1, 4, D, H, W] (logits) in a reference camera's frustum."""

    def __init__(
        self,
        context: BuildContext,
        planes: int = 32,
        plane_width: int = 64,
        plane_height: int = 0,
        reference: Reference = "mean",
        near: float = 0.0,
        far: float = 0.0,
        margin: float = 1.2,
        between: Between = "linear",
        lr_scale: float = 20.0,
    ):
        super().__init__()
        if planes < 2:
            raise ValueError(f"planes must be >= 2, got {planes}")
        if plane_width < 1 or plane_height < 0:
            raise ValueError("plane_width must be >= 1 and plane_height >= 0")
        if margin <= 0 or lr_scale <= 0:
            raise ValueError("margin and lr_scale must be > 0")
        scene = context.scene
        views = scene.split("train")
        near, far = near or scene.near, far or reachable_depth(views, scene.far)
        if not 0 < near < far:
            raise ValueError(f"need 0 < near < far for the planes, got near={near}, far={far}")
        height = plane_height or max(1, round(plane_width * views.height / views.width))
        self.geometry: PlaneGeometry = plane_geometry(views, reference, near, far, planes, margin)
        self.between = between
        # Zero colour logits (grey) and alpha 1/D per plane, so that the far planes
        # still get light through at the start.
        init = torch.zeros(1, 4, planes, height, plane_width)
        init[:, 3] = math.log(1.0 / (planes - 1))
        self.planes = nn.Parameter(init)
        tag_parameter(self.planes, lr_scale=lr_scale)  # the optimiser's per-parameter factor

    def lookup(self, uv: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """Colour [N, 3] and alpha [N, 1] at texture coordinates [N, 2] of plane ``index``
        (continuous: read linearly between the two nearest planes)."""
        count = self.geometry.count
        z = (2.0 * index.clamp(0, count - 1) + 1.0) / count - 1.0
        grid = torch.cat([uv, z[:, None]], dim=-1).view(1, 1, 1, -1, 3)
        raw = nn.functional.grid_sample(
            self.planes, grid.to(self.planes.dtype), mode="bilinear",
            padding_mode="border", align_corners=False,
        )  # fmt: skip
        raw = raw.view(4, -1).t()
        return torch.sigmoid(raw[:, :3]), torch.sigmoid(raw[:, 3:]).clamp(max=MAX_ALPHA)

    def rgba(self, positions: Tensor, index: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Colour, alpha (zero outside the planes) and depth [N] of world points; ``index``
        fixes the plane of points known to lie on one."""
        uv, continuous, depth = self.geometry.project(positions)
        inside = self.geometry.inside(uv, continuous, depth)
        if index is None:
            index = continuous if self.between == "linear" else continuous.round()
        else:
            index = index.to(continuous.dtype)
        rgb, alpha = self.lookup(uv, index)
        return rgb, alpha * inside[:, None].to(alpha.dtype), depth

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density and colour per sample (exact alpha-over for plane samples)."""
        plane = samples.plane_indices if isinstance(samples, PlaneSamples) else None
        rgb, alpha, depth = self.rgba(samples.positions, plane)
        if plane is not None:  # from the mpi sampler: the interval spans this plane's layer
            span = samples.deltas.clamp_min(1e-6)
        else:
            span = self.geometry.gap(depth)[:, None]
        return {"density": -torch.log1p(-alpha) / span, "rgb": rgb}

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Slab density [N, 1] at world positions (for occupancy grids)."""
        _, alpha, depth = self.rgba(positions)
        return -torch.log1p(-alpha) / self.geometry.gap(depth)[:, None]
