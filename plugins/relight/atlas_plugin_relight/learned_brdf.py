"""Learned reflectance: an MLP of (normal, light, view), spherical-harmonic and Fourier BSDFs."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import softplus

from atlas_core.api import mlp
from atlas_plugin_relight.brdf import Reflectance, dot, half_vector, unit

FEATURES = 8


class MLPReflectance(Reflectance):
    """``softplus(MLP(n, wi, wo, features)) / pi`` (NeRV, Srinivasan et al. 2021, learns
    reflectance as a network; here the network sees the directions directly)."""

    params = FEATURES

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = mlp(9 + FEATURES, width, 2, 3)

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """One MLP evaluation per light."""
        lights = wi.shape[1]
        rep = lambda v: v[:, None, :].expand(-1, lights, -1)  # noqa: E731
        inputs = torch.cat([rep(n), wi, rep(wo), rep(raw)], dim=-1)
        return softplus(self.net(inputs)) / math.pi


def local_frame(n: Tensor) -> tuple[Tensor, Tensor]:
    """Two tangents [R, 3] completing the unit normal to an orthonormal frame."""
    helper = torch.where(n[:, :1].abs() < 0.9, n.new_tensor([1.0, 0, 0]), n.new_tensor([0, 1.0, 0]))
    t = unit(torch.cross(helper, n, dim=-1))
    return t, torch.cross(n, t, dim=-1)


def to_local(v: Tensor, n: Tensor) -> Tensor:
    """Directions [R, L, 3] in the (t, b, n) frame of each point."""
    t, b = local_frame(n)
    return torch.cat([dot(v, t[:, None]), dot(v, b[:, None]), dot(v, n[:, None])], dim=-1)


def real_sh(d: Tensor, degree: int) -> Tensor:
    """Real spherical harmonics up to ``degree`` <= 2 of unit vectors [..., 3] -> [..., K]."""
    x, y, z = d.unbind(-1)
    basis = [torch.full_like(x, 0.282095)]
    if degree >= 1:
        basis += [0.488603 * y, 0.488603 * z, 0.488603 * x]
    if degree >= 2:
        basis += [1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                  1.092548 * x * z, 0.546274 * (x * x - y * y)]  # fmt: skip
    return torch.stack(basis, dim=-1)


class SHReflectance(Reflectance):
    """BSDF as learned SH coefficients of the local half vector (Ramamoorthi & Hanrahan
    2001 represent reflectance in SH); symmetric in light and view, so reciprocal."""

    def __init__(self, degree: int = 2):
        super().__init__()
        self.degree = degree
        self.count = (degree + 1) ** 2
        self.params = 3 * self.count

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """softplus of the SH expansion, per colour channel."""
        basis = real_sh(to_local(half_vector(wi, wo), n), self.degree)  # [R, L, K]
        coeffs = raw.view(-1, 3, self.count)
        return softplus(torch.einsum("rlk,rck->rlc", basis, coeffs)) / math.pi


class FourierReflectance(Reflectance):
    """Isotropic Fourier BSDF: cosine series in the half-vector angle and the azimuth
    difference of light and view (the azimuthal expansion of Jakob et al. 2014)."""

    def __init__(self, terms: int = 4):
        super().__init__()
        self.terms = terms
        self.params = 3 * (2 * terms - 1)

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """softplus of the two cosine series, per colour channel."""
        theta_h = torch.acos(dot(n[:, None], half_vector(wi, wo)).clamp(-0.999999, 0.999999))
        li, lo = to_local(wi, n), to_local(wo[:, None, :], n)
        phi_d = torch.atan2(li[..., 1], li[..., 0]) - torch.atan2(lo[..., 1], lo[..., 0])
        k = torch.arange(self.terms, device=raw.device, dtype=raw.dtype)
        basis = torch.cat([torch.cos(k * theta_h), torch.cos(k[1:] * phi_d[..., None])], -1)
        coeffs = raw.view(-1, 3, 2 * self.terms - 1)
        return softplus(torch.einsum("rlk,rck->rlc", basis, coeffs)) / math.pi
