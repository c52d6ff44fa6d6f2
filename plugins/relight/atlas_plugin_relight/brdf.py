"""Analytic reflectance models: Lambert, Blinn-Phong, Cook-Torrance GGX.

Every model maps raw per-point parameters [R, P] (from the material head) and unit
directions (normal ``n`` [R, 3], toward-light ``wi`` [R, L, 3], toward-viewer ``wo``
[R, 3]) to BRDF values [R, L, 3] (the cosine factor is the integrator's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

MIN_COS = 1e-4


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Dot product over the last axis, keeping it."""
    return (a * b).sum(dim=-1, keepdim=True)


def unit(v: Tensor) -> Tensor:
    """Normalise the last axis."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def half_vector(wi: Tensor, wo: Tensor) -> Tensor:
    """The half vector [R, L, 3] between lights [R, L, 3] and the view [R, 3] (Blinn 1977)."""
    return unit(wi + wo[:, None, :])


class Reflectance(nn.Module):
    """Base: ``params`` raw numbers per point, ``forward(raw, n, wi, wo) -> [R, L, 3]``."""

    params: int = 0

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """BRDF values for every light."""
        raise NotImplementedError


class Diffuse(Reflectance):
    """Lambert: ``albedo / pi``."""

    params = 3

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """Constant in the directions."""
        albedo = torch.sigmoid(raw[:, :3])
        return (albedo / math.pi)[:, None, :].expand(-1, wi.shape[1], -1)


def blinn_phong(albedo: Tensor, ks: Tensor, shininess: Tensor, n: Tensor, wi: Tensor,
                wo: Tensor) -> Tensor:  # fmt: skip
    """Normalised Blinn-Phong (Blinn 1977): albedo/pi + ks (s+8)/(8 pi) (n.h)^s."""
    cos_h = dot(n[:, None, :], half_vector(wi, wo)).clamp_min(0.0)
    s = shininess[:, None, :]
    lobe = ks[:, None, :] * (s + 8.0) / (8.0 * math.pi) * cos_h.clamp_min(1e-6) ** s
    return albedo[:, None, :] / math.pi + lobe * (cos_h > 0)


class BlinnPhong(Reflectance):
    """Lambert albedo plus a normalised Blinn-Phong lobe; shininess in [1, 101]."""

    params = 5

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """Diffuse plus specular lobe."""
        albedo = torch.sigmoid(raw[:, :3])
        ks = torch.sigmoid(raw[:, 3:4])
        shininess = 1.0 + 100.0 * torch.sigmoid(raw[:, 4:5] - 1.0)
        return blinn_phong(albedo, ks, shininess, n, wi, wo)


def ggx(albedo: Tensor, roughness: Tensor, f0: Tensor, n: Tensor, wi: Tensor,
        wo: Tensor) -> Tensor:  # fmt: skip
    """Lambert plus Cook-Torrance with GGX D, Schlick F and Smith G (Walter et al. 2007)."""
    h = half_vector(wi, wo)
    n_ = n[:, None, :]
    cos_i = dot(n_, wi).clamp_min(MIN_COS)
    cos_o = dot(n, wo)[:, None, :].clamp_min(MIN_COS)
    cos_h = dot(n_, h).clamp_min(0.0)
    a2 = (roughness**2)[:, None, :]
    d = a2 / (math.pi * (cos_h**2 * (a2 - 1.0) + 1.0) ** 2)  # Walter et al. 2007, eq. 33
    fresnel = f0[:, None, :] + (1 - f0[:, None, :]) * (1 - dot(wo[:, None, :], h).clamp(0, 1)) ** 5

    def g1(cos: Tensor) -> Tensor:  # Walter et al. 2007, eq. 34 (separable Smith)
        return 2 * cos / (cos + torch.sqrt(a2 + (1 - a2) * cos**2))

    specular = d * fresnel * g1(cos_i) * g1(cos_o) / (4 * cos_i * cos_o)
    return albedo[:, None, :] / math.pi + specular


class GGX(Reflectance):
    """Cook-Torrance GGX: albedo, roughness in [0.02, 1], F0 in [0, 1]."""

    params = 5

    def forward(self, raw: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """Diffuse plus microfacet lobe."""
        albedo = torch.sigmoid(raw[:, :3])
        roughness = 0.02 + 0.98 * torch.sigmoid(raw[:, 3:4])
        f0 = torch.sigmoid(raw[:, 4:5] - 3.0)  # starts near 0.05, a dielectric
        return ggx(albedo, roughness, f0, n, wi, wo)
