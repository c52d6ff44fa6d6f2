"""The VolSDF field: SDF network, Laplace-CDF density and a normal-aware colour network.

Yariv et al. 2021, "Volume Rendering of Neural Implicit Surfaces" (VolSDF), sec. 3 and
the appendix: an SDF MLP gives the signed distance and a geometry feature vector; the
density is a scaled Laplace CDF of the negated distance; the colour network sees the
position, the SDF gradient (normal), the view direction and the features (as in IDR).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.api import Field, PositionalEncoding, RaySamples, mlp
from atlas_plugin_volsdf.density import LaplaceDensity
from atlas_plugin_volsdf.sdf_network import SDFNetwork

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


class VolSDFField(Field):
    """SDF field with VolSDF density; outputs density, rgb, sdf, normals, sdf_gradients.

    Options: the SDF MLP's ``width``, ``depth``, ``skips`` and ``features``; the
    initial sphere's ``radius``; ``bound_radius`` R > 0 clips the SDF with the
    paper's bounding sphere, ``sdf = min(sdf, R - |x|)`` (0 turns it off);
    ``beta_init``/``beta_min`` of the learned Laplace scale; the colour MLP's
    ``color_width``/``color_depth`` and ``dir_frequencies`` of the view encoding.
    The position goes in raw and through the run's encoding (any encoding works: the
    geometric initialisation starts with the encoded features switched off).
    """

    def __init__(
        self,
        context: BuildContext,
        width: int = 64,
        depth: int = 4,
        skips: tuple[int, ...] = (2,),
        features: int = 64,
        radius: float = 1.0,
        bound_radius: float = 0.0,
        beta_init: float = 0.1,
        beta_min: float = 1e-4,
        color_width: int = 64,
        color_depth: int = 2,
        dir_frequencies: int = 4,
    ):
        super().__init__()
        if features < 0 or color_width < 1 or color_depth < 1:
            raise ValueError("features must be >= 0, color_width and color_depth >= 1")
        if bound_radius < 0:
            raise ValueError("bound_radius must be >= 0 (0 turns the bounding sphere off)")
        if bound_radius and bound_radius <= radius:
            raise ValueError("bound_radius must be larger than the initial sphere's radius")
        self.encoding = context.make_encoding(3)
        self.sdf_network = SDFNetwork(self.encoding.out_dim, width, depth, skips, features, radius)
        self.laplace = LaplaceDensity(beta_init, beta_min)
        self.bound_radius = bound_radius
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        color_in = 3 + 3 + self.dir_encoding.out_dim + features
        self.color_mlp = mlp(color_in, color_width, color_depth, 3)
        self.fit_initial_sphere(radius)

    @torch.no_grad()
    def fit_initial_sphere(self, radius: float, count: int = 8192) -> None:
        """Make the starting SDF |x| - radius in a ball of 3 * radius (see SDFNetwork)."""
        generator = torch.Generator().manual_seed(0)
        directions = torch.randn(count, 3, generator=generator)
        directions = directions / directions.norm(dim=-1, keepdim=True)
        lengths = 3.0 * radius * torch.rand(count, 1, generator=generator) ** (1.0 / 3.0)
        points = directions * lengths  # uniform in the ball
        inputs = torch.cat([points, self.encoding(points)], dim=-1)
        self.sdf_network.fit_sphere(inputs, radius)

    def geometry(
        self, positions: Tensor, samples: RaySamples | None = None
    ) -> tuple[Tensor, Tensor]:
        """SDF [N, 1] and geometry features at positions (encoded from ``samples`` if given)."""
        if samples is None:
            encoded = self.encoding(positions)
        else:
            encoded = self.encoding.encode_samples(samples)
        sdf, features = self.sdf_network(torch.cat([positions, encoded], dim=-1))
        if self.bound_radius > 0:  # VolSDF sec. 3.1: the scene lives inside a sphere of radius R
            outside = self.bound_radius - positions.norm(dim=-1, keepdim=True)
            sdf = torch.minimum(sdf, outside)
        return sdf, features

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] at world positions [N, 3] (negative inside)."""
        return self.geometry(positions)[0]

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """VolSDF density [N, 1] at world positions (for occupancy grids)."""
        return self.laplace(self.sdf(positions))

    @property
    def beta(self) -> float:
        """The current Laplace scale (smaller is a sharper surface)."""
        return float(self.laplace.beta.detach())

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density, colour, SDF, unit normals and raw SDF gradients per sample.

        The gradient is taken by autograd; while training it keeps its graph
        (``create_graph``) so the eikonal loss and the colour network's normal input
        train the SDF; when evaluating everything is detached.
        """
        keep_graph = self.training and torch.is_grad_enabled()
        with torch.enable_grad():
            positions = samples.positions
            if not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            sdf, features = self.geometry(positions, samples.with_positions(positions))
            (gradients,) = torch.autograd.grad(
                sdf, positions, torch.ones_like(sdf), create_graph=keep_graph
            )
        if not keep_graph:
            positions, sdf, features = positions.detach(), sdf.detach(), features.detach()
        normals = gradients / gradients.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        views = self.dir_encoding(samples.directions)
        color_in = torch.cat([positions, gradients, views, features], dim=-1)
        return {
            "density": self.laplace(sdf),
            "rgb": torch.sigmoid(self.color_mlp(color_in)),
            "sdf": sdf,
            "normals": normals,
            "sdf_gradients": gradients,
        }
