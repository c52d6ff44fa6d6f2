"""Reference tests in float64: Mip-NeRF's integrated positional encoding (Barron et al. 2021)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from atlas_plugin_mip.encoding import IntegratedPositionalEncoding, integrated_encoding
from atlas_plugin_mip.gaussians import cone_moments

MEANS = [0.3, -1.7, 2.9]
SIGMAS = [1e-4, 1e-3, 1e-2, 1e-1]
FREQUENCIES = 16  # 2^0 .. 2^15


def expected_by_quadrature(mu: float, sigma: float, k: int) -> tuple[float, float]:
    """E[sin(2^k x)], E[cos(2^k x)] for x ~ N(mu, sigma^2): the definition, integrated."""
    # trapezoid rule in u = (x - mu) / sigma over +-12: exponentially accurate here
    u = np.linspace(-12.0, 12.0, 40001)
    pdf = np.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
    x = mu + sigma * u
    step = 24.0 / 40000

    def integrate(values: np.ndarray) -> float:
        return float(step * (values.sum() - 0.5 * (values[0] + values[-1])))

    return integrate(np.sin(2.0**k * x) * pdf), integrate(np.cos(2.0**k * x) * pdf)


def closed_form(mu: float, var: float, k: int) -> tuple[float, float]:
    """Mip-NeRF eq. 14: E[sin(2^k x)] = sin(2^k mu) exp(-4^k var / 2), and cos alike."""
    damping = math.exp(-0.5 * 4.0**k * var)
    return math.sin(2.0**k * mu) * damping, math.cos(2.0**k * mu) * damping


def encode(mean: list[float], var: list[float], dtype: torch.dtype) -> torch.Tensor:
    """``integrated_encoding`` of 1-D Gaussians with the 16 octaves of the ``ipe`` encoding."""
    freqs = IntegratedPositionalEncoding(3, FREQUENCIES).freqs.to(dtype)
    m = torch.tensor(mean, dtype=dtype)[:, None]
    v = torch.tensor(var, dtype=dtype)[:, None]
    return integrated_encoding(m, v, freqs, include_input=False)


CASES = [(mu, sigma) for mu in MEANS for sigma in SIGMAS]


def test_ipe_matches_eq14_closed_form_in_float64() -> None:
    """IPE (Mip-NeRF, Barron et al. 2021, eq. 14) vs math.sin/cos/exp, k = 0..15."""
    got = encode([c[0] for c in CASES], [c[1] ** 2 for c in CASES], torch.float64)
    for row, (mu, sigma) in enumerate(CASES):
        for k in range(FREQUENCIES):
            sin, cos = closed_form(mu, sigma**2, k)
            assert got[row, k].item() == pytest.approx(sin, rel=1e-12, abs=1e-300)
            assert got[row, FREQUENCIES + k].item() == pytest.approx(cos, rel=1e-12, abs=1e-300)


def test_ipe_is_the_expectation_of_the_encoding() -> None:
    """Mip-NeRF eq. 14 against its definition E_{x~N(mu, var)}[sin, cos(2^k x)], integrated."""
    got = encode([c[0] for c in CASES], [c[1] ** 2 for c in CASES], torch.float64)
    for row, (mu, sigma) in enumerate(CASES):
        for k in range(FREQUENCIES):
            sin, cos = expected_by_quadrature(mu, sigma, k)
            # 1e-10: x = mu + sigma u rounds to 1e-16, times 2^15 in the argument
            assert got[row, k].item() == pytest.approx(sin, abs=1e-10)
            assert got[row, FREQUENCIES + k].item() == pytest.approx(cos, abs=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ipe_vanishes_at_high_frequencies_without_nan(dtype: torch.dtype) -> None:
    """Mip-NeRF eq. 14 where 4^k var >> 1: features go to exactly 0, never nan or inf."""
    mean = [0.3, -1.7, 2.9, 1e3]
    var = [2e3, 1e6, 1e30, 3e38]
    got = encode(mean, var, dtype)
    assert torch.isfinite(got).all()
    assert got.eq(0).all()  # exp(-4^k var / 2) underflows for every k >= 0 here
    # and the decay is monotone in k at a moderate variance (sigma 2^-10)
    decay = encode([0.0], [4.0**-10], dtype)[0, FREQUENCIES:]  # cos(0) = 1: the damping
    assert (decay[1:] <= decay[:-1]).all() and decay[-1] < 1e-40 and decay[0] > 0.999


def test_ipe_float32_matches_float64_at_the_float32_inputs() -> None:
    """Mip-NeRF eq. 14 in float32: within 1e-6 of float64 at the same (rounded) inputs."""
    generator = torch.Generator().manual_seed(6)
    mean = (torch.rand(3000, generator=generator) * 6 - 3).tolist()
    var = (10 ** (torch.rand(3000, generator=generator) * 10 - 10)).tolist()
    got = encode(mean, var, torch.float32).double()
    m32 = torch.tensor(mean, dtype=torch.float32).double().tolist()
    v32 = torch.tensor(var, dtype=torch.float32).double().tolist()
    want = encode(m32, v32, torch.float64)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def exact_cone_moments(t0: Fraction, t1: Fraction, r: Fraction) -> tuple[Fraction, ...]:
    """Mip-NeRF eq. 5-6 in exact rationals: moments of a frustum whose area grows as t^2."""
    # mu_t = 3 (t1^4 - t0^4) / (4 (t1^3 - t0^3)), E[t^2] = 3 (t1^5 - t0^5) / (5 (t1^3 - t0^3)),
    # sigma_r^2 = r^2 E[t^2] / 4 = 3 r^2 (t1^5 - t0^5) / (20 (t1^3 - t0^3))
    cube = t1**3 - t0**3
    mean = Fraction(3, 4) * (t1**4 - t0**4) / cube
    second = Fraction(3, 5) * (t1**5 - t0**5) / cube
    return mean, second - mean**2, r**2 * second / 4


@pytest.mark.parametrize(
    ("t0", "t1"), [(0.5, 0.6), (2.0, 2.001), (1.0, 5.0), (100.0, 100.0 + 1e-5), (1e-3, 2e-3)]
)
def test_cone_moments_match_eq5_6_exactly(t0: float, t1: float) -> None:
    """The stable form (Mip-NeRF eq. 7) equals eq. 5-6 in exact arithmetic, float64 1e-9."""
    radius = 2e-3
    got = cone_moments(*(torch.tensor([[v]], dtype=torch.float64) for v in (t0, t1, radius)))
    want = exact_cone_moments(Fraction(t0), Fraction(t1), Fraction(radius))
    for value, exact in zip(got, want, strict=True):
        assert value.item() == pytest.approx(float(exact), rel=1e-9)
