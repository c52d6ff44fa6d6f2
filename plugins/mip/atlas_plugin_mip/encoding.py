"""Integrated positional encoding (Barron et al. 2021, Mip-NeRF, sec. 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from atlas_core.api import PositionalEncoding, RaySamples
from atlas_plugin_mip.gaussians import Shape, frustum_moments, lift_diagonal
from atlas_plugin_mip.options import MipOptions

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


def integrated_encoding(mean: Tensor, var: Tensor, freqs: Tensor, include_input: bool) -> Tensor:
    """Expected sin/cos features of Gaussians with diagonal covariance ``var`` [N, D].

    Mip-NeRF, eq. 14: ``E[sin(2^k x)] = sin(2^k mu) exp(-4^k var / 2)`` (and cos), laid
    out like the core's PositionalEncoding (``x``, then every sin, then every cos).
    """
    scaled_mean = (mean[..., None, :] * freqs[:, None]).flatten(-2)
    scaled_var = (var[..., None, :] * freqs.square()[:, None]).flatten(-2)
    damping = torch.exp(-0.5 * scaled_var)
    parts = [torch.sin(scaled_mean) * damping, torch.cos(scaled_mean) * damping]
    if include_input:
        parts.insert(0, mean)
    return torch.cat(parts, dim=-1)


class IntegratedPositionalEncoding(PositionalEncoding):
    """IPE of the Gaussian each interval's conical frustum (or cylinder) approximates.

    ``encode_samples`` integrates the encoding over each sample's frustum; calling the
    module on bare positions is the plain positional encoding (zero covariance), which
    is what occupancy grids and gradient-based losses query.
    """

    def __init__(
        self, in_dim: int = 3, frequencies: int = 10, include_input: bool = True,
        shape: Shape = "cone",
    ):  # fmt: skip
        if in_dim != 3:
            raise ValueError(f"ipe encodes 3-D positions, got in_dim={in_dim}")
        if shape not in ("cone", "cylinder"):
            raise ValueError(f"shape must be 'cone' or 'cylinder', got {shape!r}")
        super().__init__(in_dim, frequencies, include_input)
        self.shape = shape

    def gaussians(self, samples: RaySamples) -> tuple[Tensor, Tensor]:
        """Means [N, 3] and diagonal covariances [N, 3] of the samples' frustums.

        The mean is offset from ``samples.positions`` (the interval midpoint, or where a
        deformation moved it) by ``mean_t - t_mid`` along the ray, so moved samples and
        gradients with respect to positions carry through.
        """
        radii = samples.rays.radii[samples.ray_indices]
        directions = samples.directions
        mean_t, var_t, var_r = frustum_moments(samples.t_starts, samples.t_ends, radii, self.shape)
        mid = 0.5 * (samples.t_starts + samples.t_ends)
        mean = samples.positions + directions * (mean_t - mid)
        return mean, lift_diagonal(directions, var_t, var_r)

    def encode_samples(self, samples: RaySamples) -> Tensor:
        """Integrated encoding of every sample's frustum [N, out_dim]."""
        mean, var = self.gaussians(samples)
        return integrated_encoding(mean, var, self.freqs, self.include_input)


def ipe_encoding(
    context: BuildContext, in_dim: int = 3, frequencies: int = 10, include_input: bool = True
) -> IntegratedPositionalEncoding:
    """The registered ``ipe`` factory: ``encoding.*`` options plus ``mip.shape``."""
    from atlas_core.api import plugin_options

    shape = plugin_options(context.config, "mip", MipOptions).shape
    return IntegratedPositionalEncoding(in_dim, frequencies, include_input, shape)
