"""The Laplace CDF and VolSDF's density with a learned, positive beta."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_volsdf.density import LaplaceDensity, laplace_cdf


def test_laplace_cdf_matches_both_branches() -> None:
    beta = torch.tensor(0.3)
    s = torch.linspace(-2.0, 2.0, 41)
    expected = torch.where(s <= 0, 0.5 * torch.exp(s / beta), 1 - 0.5 * torch.exp(-s / beta))
    assert torch.allclose(laplace_cdf(s, beta), expected, atol=1e-7)
    assert float(laplace_cdf(torch.tensor(0.0), beta)) == pytest.approx(0.5)


def test_laplace_cdf_is_monotone_and_finite_for_tiny_beta() -> None:
    s = torch.linspace(-50.0, 50.0, 1001, requires_grad=True)
    cdf = laplace_cdf(s, torch.tensor(1e-4))
    assert torch.isfinite(cdf).all() and (cdf >= 0).all() and (cdf <= 1).all()
    assert (cdf[1:] >= cdf[:-1]).all()
    cdf.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_density_is_alpha_times_psi_of_minus_sdf() -> None:
    density = LaplaceDensity(beta_init=0.1, beta_min=1e-4)
    sdf = torch.tensor([[-10.0], [0.0], [10.0], [0.05]])
    sigma = density(sdf)
    alpha = 1.0 / 0.1
    assert sigma[0].item() == pytest.approx(alpha, rel=1e-5)  # deep inside: 1 / beta
    assert sigma[1].item() == pytest.approx(alpha / 2, rel=1e-5)  # on the surface
    assert sigma[2].item() == pytest.approx(0.0, abs=1e-30)  # far outside
    assert sigma[3].item() == pytest.approx(alpha * 0.5 * math.exp(-0.5), rel=1e-5)


def test_beta_stays_positive_and_learns() -> None:
    density = LaplaceDensity(beta_init=0.1, beta_min=0.01)
    assert float(density.beta.detach()) == pytest.approx(0.1)
    with torch.no_grad():
        density.beta_param.fill_(-0.5)  # wherever the optimiser takes the raw parameter
    assert float(density.beta.detach()) == pytest.approx(0.51)
    with torch.no_grad():
        density.beta_param.zero_()
    assert float(density.beta.detach()) == pytest.approx(0.01)
    with torch.no_grad():
        density.beta_param.fill_(0.2)
    density(torch.tensor([[0.1]])).sum().backward()
    assert density.beta_param.grad is not None and density.beta_param.grad.abs() > 0


@pytest.mark.parametrize(("beta_init", "beta_min"), [(0.1, 0.0), (0.01, 0.1)])
def test_bad_beta_options_raise(beta_init: float, beta_min: float) -> None:
    with pytest.raises(ValueError, match="beta_min"):
        LaplaceDensity(beta_init, beta_min)
