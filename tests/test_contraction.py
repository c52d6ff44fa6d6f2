"""Mip-NeRF 360's contraction (Barron et al. 2022, eq. 10) and the s-space distance warp."""

from __future__ import annotations

import torch

from atlas_core.nerf.contraction import (
    LINEAR_REACH,
    contract,
    distance_to_s,
    s_to_distance,
    uncontract,
)


def paper_contract(x: torch.Tensor) -> torch.Tensor:
    """Eq. 10 written per point: x if ||x|| <= 1 else (2 - 1/||x||) (x / ||x||)."""
    out = []
    for p in x:
        n = float(p.norm())
        out.append(p if n <= 1 else (2 - 1 / n) * (p / n))
    return torch.stack(out)


def test_formula_inverse_and_bounds() -> None:
    """Matches eq. 10 in float64, is inverted by uncontract and stays in the radius-2 ball."""
    g = torch.Generator().manual_seed(0)
    x = (
        torch.randn(500, 3, generator=g, dtype=torch.float64)
        * torch.logspace(-2, 3, 500, dtype=torch.float64)[:, None]
    )
    y = contract(x)
    assert torch.allclose(y, paper_contract(x), atol=1e-12)
    assert bool((y.norm(dim=-1) < 2.0).all())
    assert torch.allclose(uncontract(y), x, rtol=1e-8, atol=1e-10)
    inside = x.norm(dim=-1) <= 1
    assert torch.equal(y[inside], x[inside])


def test_continuous_at_one_and_limit_two() -> None:
    """Value and radial slope agree on both sides of |x| = 1; |contract(x)| -> 2."""
    u = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64))
    eps = 1e-7
    below, at, above = (contract(u * r) for r in (1 - eps, 1.0, 1 + eps))
    assert torch.allclose(below, at, atol=1e-6) and torch.allclose(above, at, atol=1e-6)
    slope_in = (at - below).norm() / eps
    slope_out = (above - at).norm() / eps
    assert abs(float(slope_in) - 1.0) < 1e-5 and abs(float(slope_out) - 1.0) < 1e-5
    for r, gap in ((10.0, 0.1), (1e3, 1e-3), (1e8, 1e-8)):
        assert abs(2.0 - float(contract(u * r).norm())) <= gap * 1.0001


def test_distance_warp_inverse_and_monotone() -> None:
    """s(t) is t up to T, then T (2 - T/t); s_to_distance inverts it."""
    t = torch.logspace(-3, 6, 400, dtype=torch.float64)
    s = distance_to_s(t)
    assert bool((s[1:] > s[:-1]).all()) and float(s.max()) < 2 * LINEAR_REACH
    near = t <= LINEAR_REACH
    assert torch.equal(s[near], t[near])
    assert torch.allclose(s_to_distance(s), t, rtol=1e-6)


def test_even_s_steps_never_jump_more_than_a_step_in_contracted_space() -> None:
    """From any camera inside the unit ball, one step ds moves a sample at most ds after
    contraction: the march's steps follow the contracted grid's cells."""
    g = torch.Generator().manual_seed(1)
    origins = torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64))
    origins = origins * torch.rand(64, 1, generator=g, dtype=torch.float64)
    dirs = torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64))
    ds = 0.01
    s = torch.arange(0.0, 2 * LINEAR_REACH - ds, ds, dtype=torch.float64)
    t = s_to_distance(s)
    points = contract(origins[:, None] + dirs[:, None] * t[None, :, None])
    jumps = (points[:, 1:] - points[:, :-1]).norm(dim=-1)
    assert float(jumps.max()) <= ds * (1 + 1e-6)
