"""The Instant-NGP radiance field (Mueller et al. 2022, sec. 5.4).

Mueller et al. 2022, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding": hash-encoded position -> density MLP (one hidden layer of 64) giving a log
density and 15 geometry features -> colour MLP (two hidden layers of 64) of those
features and the degree-4 spherical harmonics of the view direction -> sigmoid RGB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from atlas_core.api import Field, RaySamples, frustum_multisamples, trunc_exp
from atlas_plugin_ngp.hash_encoding import HashEncoding, Kernel
from atlas_plugin_ngp.mlp import FusedMLP
from atlas_plugin_ngp.spherical_harmonics import SphericalHarmonics

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

CONTRACTED_LOG2_TABLE = 19  # unbounded scenes: the whole world shares the table
LOG2_TABLE = 17
GEOMETRY_FEATURES = 15  # density MLP outputs 1 + 15 values (paper, sec. 5.4)
DENSITY_SHIFT = -1.0  # initial density e^-1, as in nerfstudio; -3 trained worse on lego


# antialias(0): the centre alone, its levels weighted; 6 points halve the steps on a CPU
# (multiscale lego, 300 s: 1 point 28.78 dB, 6 points 26.85)
MULTISAMPLES = 1


class NGPField(Field):
    """Hash grid + small MLPs: density from position, colour from features and view.

    The options are those of the hash encoding (``levels`` grids from
    ``base_resolution`` to ``finest_resolution`` over the scene box, ``features`` per
    vertex, ``2**log2_table`` rows per hashed level), the MLPs' ``hidden`` width and
    the colour MLP's ``precision``: ``bfloat16`` computes it in bf16 (the paper's MLPs
    run in half precision), twice as fast on CPUs with native bf16 (AVX512-BF16, AMX).
    ``kernel`` chooses the hash encoding's implementation (``auto``, ``cpp``, ``torch``;
    see ``HashEncoding``). ``log2_table`` unset is 17, or 19 in a contracted (unbounded
    360) scene, whose grid holds the whole world out to infinity (Instant-NGP uses 2^19
    for large scenes; on beer, 170 s: 21.3 dB with 2^19 against 20.5 dB with 2^17).
    The density MLP stays in float32: exp() amplifies rounding, and occupancy grids
    compare densities that start out nearly equal.

    ``antialias(k)`` (the ``mip`` plugin calls it) makes training and rendering average
    the hash features of ``k`` points (0: ``MULTISAMPLES``) over each sample's frustum, each level
    weighted down where it is finer than the footprint (Zip-NeRF, Barron et al. 2023);
    ``density()`` (occupancy grids, meshes) still reads single points.
    """

    def __init__(
        self,
        context: BuildContext,
        levels: int = 16,
        features: int = 2,
        log2_table: int | None = None,
        base_resolution: int = 16,
        finest_resolution: int = 1024,
        hidden: int = 64,
        precision: Literal["float32", "bfloat16"] = "float32",
        kernel: Kernel = "auto",
    ):
        super().__init__()
        if hidden < 1:
            raise ValueError("hidden must be >= 1")
        if log2_table is None:
            contracted = getattr(context.scene, "space", "box") == "contract"
            log2_table = CONTRACTED_LOG2_TABLE if contracted else LOG2_TABLE
        self.encoding = HashEncoding(
            3, levels, features, log2_table, base_resolution, finest_resolution, kernel
        )
        self.view_encoding = SphericalHarmonics(3, degree=4)
        self.density_mlp = FusedMLP(self.encoding.out_dim, hidden, 1, 1 + GEOMETRY_FEATURES)
        colour_in = GEOMETRY_FEATURES + self.view_encoding.out_dim
        self.color_mlp = FusedMLP(colour_in, hidden, 2, 3, precision)
        bounds = context.scene.bounds
        low = torch.tensor(bounds[:3], dtype=torch.float32)
        self.register_buffer("box_low", low, persistent=False)
        self.register_buffer("box_size", torch.tensor(bounds[3:]) - low, persistent=False)
        self.multisamples = 0  # 0: point samples; k: Zip-NeRF's k points per frustum

    def geometry(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Density [N, 1] (zero outside the scene box) and geometry features [N, 15]."""
        unit = (positions - self.box_low) / self.box_size
        return self.decode(self.encoding.encode_unit(unit), unit)

    def decode(self, features: Tensor, unit: Tensor) -> tuple[Tensor, Tensor]:
        """Density and geometry features from hash features at unit-cube points [N, 3]."""
        inside = ((unit >= 0.0) & (unit <= 1.0)).all(dim=-1, keepdim=True)
        raw = self.density_mlp(features)
        return trunc_exp(raw[:, :1] + DENSITY_SHIFT) * inside, raw[:, 1:]

    def antialias(self, multisamples: int = 0) -> None:
        """Integrate features over frustums with ``multisamples`` points each (Zip-NeRF)."""
        if multisamples < 0:
            raise ValueError(f"multisamples must be >= 0, got {multisamples}")
        self.multisamples = multisamples or MULTISAMPLES

    def footprint_geometry(self, samples: RaySamples) -> tuple[Tensor, Tensor]:
        """``geometry`` of each sample's frustum rather than of its centre point."""
        points, stds = frustum_multisamples(samples, self.multisamples, self.training)
        unit = (points - self.box_low) / self.box_size
        features = self.encoding.encode_footprints(unit, stds / self.box_size.mean())
        return self.decode(features, (samples.positions - self.box_low) / self.box_size)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density and view-dependent sigmoid colour per sample."""
        if self.multisamples:
            density, features = self.footprint_geometry(samples)
        else:
            density, features = self.geometry(samples.positions)
        views = self.view_encoding(samples.directions)
        logits = self.color_mlp(torch.cat([features, views], dim=-1))
        return {"density": density, "rgb": torch.sigmoid(logits)}

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions [N, 3] (for occupancy grids)."""
        return self.geometry(positions)[0]
