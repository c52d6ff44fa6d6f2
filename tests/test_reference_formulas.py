"""Reference tests in float64 from the papers: NeRF's compositing and positional encoding."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import pytest
import torch

from atlas_core.build import BuildContext
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.nerf.compositing import render_weights, segment_exclusive_cumsum, segment_sum
from atlas_core.nerf.encodings import PositionalEncoding
from atlas_core.nerf.fields import Field
from atlas_core.nerf.occupancy import OccupancySampler
from atlas_core.nerf.rays import RayBundle, clip_to_box

INF = math.inf
EXTREMES = [0.0, 1e-6, 1e6, 1e9, INF]  # densities
DELTAS = [0.1, 0.05, 0.2, 0.1]
DTYPES = [torch.float32, torch.float64]


def reference_weights(density: list[float], deltas: list[float]) -> list[float]:
    """NeRF eq. 3 in 60-digit decimals: ``exp(-sum_{j<i} s_j d_j) (1 - exp(-s_i d_i))``."""
    # s d is 0 when either factor is (no density, or a zero-length sample), infinite
    # when s is infinite and d positive
    weights = []
    with localcontext() as ctx:
        ctx.prec = 60
        before = Decimal(0)
        for s, d in zip(density, deltas, strict=True):
            tau = Decimal(0) if s == 0 or d == 0 else Decimal(s) * Decimal(d)
            weights.append(float((-before).exp() * (1 - (-tau).exp())))
            before += tau
    return weights


def weights_of(density: list[float], deltas: list[float], counts: list[int], dtype: torch.dtype):
    """``render_weights`` of packed rays with ``counts`` samples each."""
    indices = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    d = torch.tensor(density, dtype=dtype)
    return render_weights(d, torch.tensor(deltas, dtype=dtype), indices, len(counts))


def assert_matches(got: torch.Tensor, want: list[float], dtype: torch.dtype) -> None:
    """Relative agreement: 1e-12 in float64, 1e-5 in float32 (or both underflow)."""
    rtol, tiny = (1e-12, 1e-300) if dtype == torch.float64 else (1e-5, 1e-37)
    expected = torch.tensor(want, dtype=torch.float64)
    got = got.double()
    assert not got.isnan().any()
    close = (got - expected).abs() <= rtol * expected.abs()
    assert bool((close | ((got.abs() < tiny) & (expected < tiny))).all()), (got, expected)


def rays_around(density: float) -> list[list[float]]:
    """Four-sample rays mixing an extreme density with ordinary ones."""
    return [[density] * 4, [1.0, density, 0.5, density], [density, 1.0, density, 2.0]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", EXTREMES)
def test_weights_at_extreme_densities_match_nerf_eq3(density: float, dtype: torch.dtype) -> None:
    """w_i = T_i (1 - exp(-sigma_i delta_i)), T_i = exp(-sum_{j<i} sigma_j delta_j) (NeRF eq. 3)."""
    for ray in rays_around(density):
        got = weights_of(ray, DELTAS, [4], dtype)
        assert_matches(got, reference_weights(ray, DELTAS), dtype)
        assert float(got.sum()) <= 1.0 + 2 * torch.finfo(dtype).eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_transmittance_before_a_huge_optical_depth(dtype: torch.dtype) -> None:
    """NeRF eq. 3 for densities [30, 1e9], delta 0.1: weights [0.9502, 0.0498], opacity 1."""
    # cumsum(x) - x gave [0.950, 1.0] and opacity 1.95 in float32
    got = weights_of([30.0, 1e9], [0.1, 0.1], [2], dtype)
    want = reference_weights([30.0, 1e9], [0.1, 0.1])
    assert want == pytest.approx([1 - math.exp(-3), math.exp(-3)], rel=1e-15)
    assert torch.allclose(got.double(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exclusive_sum_keeps_small_terms_before_large_ones(dtype: torch.dtype) -> None:
    """sum_{j<i} tau_j of NeRF eq. 3 is exact before a large or infinite tau, on both paths."""
    values = torch.tensor([3.0, 1e8, 1.0, 2.0, INF, 5.0], dtype=dtype)
    want = torch.tensor([0.0, 3.0, 1e8 + 3.0, 0.0, 2.0, INF], dtype=dtype)
    dense = segment_exclusive_cumsum(values, torch.tensor([0, 0, 0, 1, 1, 1]), 2)
    ragged = segment_exclusive_cumsum(values, torch.tensor([0, 0, 0, 2, 2, 2]), 3)
    assert torch.equal(dense, want) and torch.equal(ragged, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_infinite_density_is_opaque_without_nan(dtype: torch.dtype) -> None:
    """tau = inf: alpha = 1, T = 0 behind (NeRF eq. 3 in the limit), finite gradients."""
    density = torch.tensor([0.5, INF, 2.0, INF], dtype=dtype, requires_grad=True)
    deltas = torch.tensor([0.1, 0.1, 0.1, 0.0], dtype=dtype)  # inf * 0: no sample
    w = render_weights(density, deltas, torch.zeros(4, dtype=torch.long), 1)
    alpha0 = -math.expm1(-0.05)
    assert torch.allclose(w.double(), torch.tensor([alpha0, 1 - alpha0, 0.0, 0.0]).double())
    w.sum().backward()
    assert torch.isfinite(density.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", EXTREMES)
def test_single_sample_rays(density: float, dtype: torch.dtype) -> None:
    """One sample: T = 1, w = 1 - exp(-sigma delta) (NeRF eq. 3), alone and packed."""
    want = reference_weights([density], [0.1])
    assert_matches(weights_of([density], [0.1], [1], dtype), want, dtype)
    packed = weights_of([density, 1.0, density], [0.1, 0.2, 0.1], [1, 1, 1], dtype)
    assert_matches(packed, want + reference_weights([1.0], [0.2]) + want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_rays_have_no_weight(dtype: torch.dtype) -> None:
    """Rays without samples composite to opacity 0; the others to NeRF eq. 3 alone."""
    counts = [0, 3, 0, 0, 2, 0]
    density = [1.0, 1e9, 4.0, 1e-6, INF]
    deltas = [0.1, 0.2, 0.1, 0.3, 0.1]
    w = weights_of(density, deltas, counts, dtype)
    want = reference_weights(density[:3], deltas[:3]) + reference_weights(density[3:], deltas[3:])
    assert_matches(w, want, dtype)
    indices = torch.repeat_interleave(torch.arange(6), torch.tensor(counts))
    acc = segment_sum(w[:, None], indices, 6)[:, 0]
    assert acc[[0, 2, 3, 5]].eq(0).all()
    nothing = weights_of([], [], [0, 0, 0], dtype)
    assert nothing.shape == (0,)
    assert segment_sum(nothing[:, None], torch.zeros(0, dtype=torch.long), 3).eq(0).all()


def random_rays(generator: torch.Generator, rays: int, most: int) -> tuple[list, list, list]:
    """Densities from 0 to inf (log-uniform between), deltas, and 0..most samples per ray."""
    counts = torch.randint(0, most + 1, (rays,), generator=generator).tolist()
    n = sum(counts)
    pool = torch.tensor([0.0, INF, *EXTREMES], dtype=torch.float64)
    density = 10 ** (torch.rand(n, generator=generator, dtype=torch.float64) * 15 - 6)
    pick = torch.rand(n, generator=generator) < 0.3
    chosen = pool[torch.randint(0, len(pool), (n,), generator=generator)]
    density = torch.where(pick, chosen, density)
    deltas = torch.rand(n, generator=generator, dtype=torch.float64) * 0.2 + 1e-3
    return density.tolist(), deltas.tolist(), counts


@pytest.mark.parametrize("dtype", DTYPES)
def test_ragged_packing_equals_each_ray_alone(dtype: torch.dtype) -> None:
    """Packed rays of 0..9 samples give each ray's own NeRF eq. 3 weights."""
    density, deltas, counts = random_rays(torch.Generator().manual_seed(3), 60, 9)
    packed = weights_of(density, deltas, counts, dtype)
    start = 0
    for count in counts:
        part = slice(start, start + count)
        alone = weights_of(density[part], deltas[part], [count], dtype)
        torch.testing.assert_close(packed[part], alone, rtol=0, atol=0)
        assert_matches(alone, reference_weights(density[part], deltas[part]), dtype)
        start += count
    # equal counts take the dense path: same weights
    same = weights_of(density[:40], deltas[:40], [8] * 5, dtype)
    ragged = weights_of(density[:40] + [1.0], deltas[:40] + [1.0], [8] * 5 + [1], dtype)
    torch.testing.assert_close(same, ragged[:40], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_opacity_never_above_one(dtype: torch.dtype) -> None:
    """sum_i w_i = 1 - T_{N+1} <= 1 (NeRF eq. 3), up to rounding of the sum (2 ulp)."""
    density, deltas, counts = random_rays(torch.Generator().manual_seed(4), 3000, 12)
    w = weights_of(density, deltas, counts, dtype)
    indices = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    acc = segment_sum(w[:, None], indices, len(counts))
    assert not acc.isnan().any() and (acc >= 0).all()
    assert float(acc.max()) <= 1.0 + 2 * torch.finfo(dtype).eps
    assert float(acc.max()) > 0.999  # rays that hit an infinite density are opaque


class Wall(Field):
    """Density 30 for 0 <= z < 0.5, then 1e12 (an opaque wall) up to the box's end."""

    def forward(self, samples):  # noqa: ANN001, ANN201
        d = self.density(samples.positions)
        return {"density": d, "rgb": torch.ones(len(d), 3)}

    def density(self, positions, times=None):  # noqa: ANN001, ANN201
        z = positions[:, 2:3]
        return torch.where(z >= 0.5, 1e12, torch.where(z >= 0.0, 30.0, 0.0))


def test_occupancy_early_stop_sees_the_transmittance_before_a_wall() -> None:
    """The sampler keeps exactly the samples with T > early_stop (T of NeRF eq. 3, float64)."""
    # T at the 1e12 wall is about exp(-15); cumsum(x) - x lost the 15 next to 1e12 * dt
    # in float32 and kept the wall's first sample with T = 1
    bounds = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
    wall = Wall()
    context = BuildContext(RunConfig(), None, SceneData({}, bounds=bounds), field=wall)
    n = 4
    origins = torch.tensor([[0.1, -0.2, -3.0]]) + torch.linspace(0, 0.1, n)[:, None]
    dirs = torch.tensor([[0.0, 0.0, 1.0]]).expand(n, 3)
    ones = torch.ones(n, 1)
    near, far = clip_to_box(origins, dirs, ones * 0.5, ones * 6, bounds)
    rays = RayBundle(origins, dirs, near, far, ones * 1e-3, torch.zeros(n).long())
    # an unupdated grid marches every cell; early_stop 0 keeps every sample
    everything, _ = OccupancySampler(context, resolution=16, early_stop=0.0).eval()(rays, wall)
    culled, _ = OccupancySampler(context, resolution=16, early_stop=1e-4).eval()(rays, wall)
    tau = wall.density(everything.positions).double()[:, 0] * everything.deltas.double()[:, 0]
    expected = []
    for ray in range(n):
        mine = tau[everything.ray_indices == ray].tolist()
        before = [math.fsum(mine[:i]) for i in range(len(mine))]
        expected += [math.exp(-b) > 1e-4 for b in before]
    keep = torch.tensor(expected)
    assert 0 < int(keep.sum()) < len(keep)
    assert torch.equal(culled.ray_indices, everything.ray_indices[keep])
    assert torch.equal(culled.t_starts, everything.t_starts[keep])
    z = culled.positions[:, 2]
    assert (z > 0.0).any() and (z < 0.5).all()  # into the fog, never into the wall


def reference_encoding(x: list[float], frequencies: int) -> list[float]:
    """NeRF eq. 4 as implemented (the authors' code, no pi): x, sin(2^k x), cos(2^k x)."""
    sines = [math.sin(2.0**k * v) for k in range(frequencies) for v in x]
    cosines = [math.cos(2.0**k * v) for k in range(frequencies) for v in x]
    return [*x, *sines, *cosines]


POINTS = [[0.0, -1.0, 1.0], [0.123456789, -0.987654321, 0.5], [3.14159, -2.5, 1e-3]]


def test_positional_encoding_matches_eq4_to_high_frequencies() -> None:
    """gamma(p) = (p, sin(2^k p), cos(2^k p)), k < 16 (NeRF eq. 4 without pi), float64."""
    encoding = PositionalEncoding(3, 16).double()
    got = encoding(torch.tensor(POINTS, dtype=torch.float64))
    want = torch.tensor([reference_encoding(p, 16) for p in POINTS], dtype=torch.float64)
    assert got.shape == (3, 3 * 33)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-15)


def test_positional_encoding_float32_adds_no_error_beyond_the_input() -> None:
    """NeRF eq. 4 without pi in float32: within 1e-6 of float64 at the float32 input."""
    # 2^k x is exact in floating point, so the only error is the sine's own rounding
    x = torch.rand(2000, 3, generator=torch.Generator().manual_seed(5)) * 4 - 2
    got = PositionalEncoding(3, 16)(x).double()
    want = PositionalEncoding(3, 16).double()(x.double())
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    sample = x[:5].double().tolist()
    reference = torch.tensor([reference_encoding(p, 16) for p in sample], dtype=torch.float64)
    torch.testing.assert_close(want[:5], reference, rtol=0, atol=1e-15)
