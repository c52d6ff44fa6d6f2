"""Reference tests in float64: VolSDF's Laplace density (Yariv et al. 2021, eq. 2-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from atlas_plugin_volsdf.density import LaplaceDensity, laplace_cdf

# |sdf| / beta from 0 to 1e4, both signs, dense near 0 and log-spaced beyond
RATIOS = np.concatenate([np.linspace(0.0, 2.0, 201), np.logspace(0.31, 4.0, 400)])
SIGNED = np.concatenate([-RATIOS[::-1], RATIOS[1:]])  # increasing s / beta


def reference_psi(s: float, beta: float) -> float:
    """VolSDF eq. 3: the Laplace CDF ``0.5 exp(s / b)`` (s <= 0), ``1 - 0.5 exp(-s / b)``."""
    if s <= 0:
        return 0.5 * math.exp(s / beta)
    return 1.0 - 0.5 * math.exp(-s / beta)


def reference_sigma(sdf: float, beta: float) -> float:
    """VolSDF eq. 2 with alpha = 1 / beta: ``sigma = Psi_beta(-sdf) / beta``."""
    return reference_psi(-sdf, beta) / beta


def relative_close(got: np.ndarray, want: np.ndarray, rtol: float, tiny: float) -> bool:
    """``|got - want| <= rtol |want|``, or both below ``tiny`` (underflow)."""
    err = np.abs(got - want)
    return bool(np.all((err <= rtol * np.abs(want)) | ((np.abs(got) < tiny) & (want < tiny))))


@pytest.mark.parametrize("beta", [1e-4, 0.01, 0.3, 2.0])
def test_laplace_cdf_matches_eq3_in_float64(beta: float) -> None:
    """Psi_beta (VolSDF, Yariv et al. 2021, eq. 3) in float64 vs math.exp, relative 1e-13."""
    s = SIGNED * beta
    got = laplace_cdf(torch.tensor(s, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64))
    want = np.array([reference_psi(v, beta) for v in s])
    # relative precision also in the lower tail (0.5 exp(-1e4) underflows to 0 in both)
    assert relative_close(got.numpy(), want, 1e-13, tiny=1e-300)


@pytest.mark.parametrize("beta", [1e-4, 0.01, 0.3])
def test_laplace_density_matches_eq2_in_float32(beta: float) -> None:
    """sigma = Psi_beta(-sdf) / beta (VolSDF eq. 2-3): float32 within 1e-5 relative of float64."""
    density = LaplaceDensity(beta_init=2 * beta, beta_min=beta / 2)
    with torch.no_grad():
        density.beta_param.fill_(beta / 2)  # beta = beta_min + |beta_param| = beta
    sdf = SIGNED * beta
    got = density(torch.tensor(sdf, dtype=torch.float32)[:, None]).detach().double().numpy()
    want = np.array([reference_sigma(v, beta) for v in sdf])
    assert np.isfinite(got).all() and (got >= 0).all()
    # down to float32's smallest normal number, times the largest alpha = 1 / beta
    assert relative_close(got[:, 0], want, 1e-5, tiny=1.2e-38 / beta)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_laplace_density_is_finite_and_monotone(dtype: torch.dtype) -> None:
    """VolSDF eq. 2: sigma in [0, 1/beta], non-increasing in sdf, sigma(0) = 1 / (2 beta)."""
    beta = 1e-3
    density = LaplaceDensity(beta_init=beta * 1.5, beta_min=beta * 0.5).to(dtype)
    with torch.no_grad():
        density.beta_param.fill_(beta * 0.5)
    sdf = torch.tensor(SIGNED * beta, dtype=dtype, requires_grad=True)
    sigma = density(sdf[:, None])[:, 0]
    sigma.sum().backward()
    assert torch.isfinite(sigma).all() and torch.isfinite(sdf.grad).all()
    assert (sigma >= 0).all() and (sigma <= 1.0 / beta * (1 + 1e-6)).all()
    assert (sigma[1:] <= sigma[:-1]).all()
    zero = density(torch.zeros(1, 1, dtype=dtype))
    assert zero.item() == pytest.approx(0.5 / beta, rel=1e-6)


def test_laplace_cdf_derivative_is_the_laplace_pdf() -> None:
    """d Psi_beta / ds = exp(-|s| / beta) / (2 beta) (the Laplace pdf), also at s = 0."""
    beta = 0.05
    values = np.append(SIGNED[::7], 0.0) * beta
    s = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    laplace_cdf(s, torch.tensor(beta, dtype=torch.float64)).sum().backward()
    want = np.exp(-np.abs(s.detach().numpy()) / beta) / (2 * beta)
    assert relative_close(s.grad.numpy(), want, 1e-12, tiny=1e-300)
    assert s.grad[-1].item() == pytest.approx(0.5 / beta, rel=1e-12)  # at s = 0
