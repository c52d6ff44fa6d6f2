"""Gaussians approximating the frustum each interval covers (Barron et al. 2021, Mip-NeRF).

A ray with unit direction ``d`` and pixel radius ``r`` (at unit distance) sweeps a cone;
the interval ``[t0, t1]`` cuts a conical frustum out of it. Its mean and variances along
the ray (``var_t``) and across it (``var_r``) define a Gaussian, lifted to world space
with a diagonal covariance.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

Shape = Literal["cone", "cylinder"]
EPS = 1e-10


def cone_moments(t_starts: Tensor, t_ends: Tensor, radii: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean distance, axial and radial variance [N, 1] of conical frustums.

    Barron et al. 2021, Mip-NeRF, eq. 7: the numerically stable form in terms of the
    midpoint ``t_mu`` and half-width ``t_delta`` of the interval.
    """
    t_mu = 0.5 * (t_starts + t_ends)
    t_delta = 0.5 * (t_ends - t_starts)
    mu2, delta2 = t_mu.square(), t_delta.square()
    denom = (3.0 * mu2 + delta2).clamp_min(EPS)
    mean_t = t_mu + 2.0 * t_mu * delta2 / denom
    var_t = delta2 / 3.0 - (4.0 / 15.0) * delta2.square() * (12.0 * mu2 - delta2) / denom.square()
    var_r = radii.square() * (
        mu2 / 4.0 + (5.0 / 12.0) * delta2 - (4.0 / 15.0) * delta2.square() / denom
    )
    return mean_t, var_t.clamp_min(0.0), var_r.clamp_min(0.0)


def cylinder_moments(
    t_starts: Tensor, t_ends: Tensor, radii: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean distance, axial and radial variance [N, 1] of cylinders of radius ``radii``.

    A uniform cylinder of length ``h`` and radius ``r``: axial variance ``h^2 / 12``,
    variance ``r^2 / 4`` along each axis across it (Mip-NeRF's cylinder variant, whose
    radius is the pixel's footprint at unit distance, independent of depth).
    """
    mean_t = 0.5 * (t_starts + t_ends)
    var_t = (t_ends - t_starts).square() / 12.0
    var_r = radii.square() / 4.0
    return mean_t, var_t, var_r.expand_as(var_t)


def frustum_moments(
    t_starts: Tensor, t_ends: Tensor, radii: Tensor, shape: Shape
) -> tuple[Tensor, Tensor, Tensor]:
    """Moments of a cone or cylinder segment: ``(mean_t, var_t, var_r)``, each [N, 1]."""
    if shape == "cone":
        return cone_moments(t_starts, t_ends, radii)
    if shape == "cylinder":
        return cylinder_moments(t_starts, t_ends, radii)
    raise ValueError(f"shape must be 'cone' or 'cylinder', got {shape!r}")


def lift_diagonal(directions: Tensor, var_t: Tensor, var_r: Tensor) -> Tensor:
    """Diagonal of the world-space covariance [N, 3] (Mip-NeRF, eq. 8 and eq. 16).

    ``Sigma = var_t d d^T + var_r (I - d d^T / |d|^2)``; only its diagonal is kept.
    """
    d2 = directions.square()
    norm2 = d2.sum(dim=-1, keepdim=True).clamp_min(EPS)
    return var_t * d2 + var_r * (1.0 - d2 / norm2)


def frustum_gaussians(
    origins: Tensor,
    directions: Tensor,
    t_starts: Tensor,
    t_ends: Tensor,
    radii: Tensor,
    shape: Shape = "cone",
) -> tuple[Tensor, Tensor]:
    """World-space means [N, 3] and diagonal covariances [N, 3] of the intervals."""
    mean_t, var_t, var_r = frustum_moments(t_starts, t_ends, radii, shape)
    return origins + directions * mean_t, lift_diagonal(directions, var_t, var_r)
