"""Reference tests: Instant-NGP's level resolutions and spatial hash (Mueller et al. 2022)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext

import numpy as np
import pytest
import torch
from atlas_plugin_ngp.hash_encoding import KERNEL_ENV, PRIMES, HashEncoding, level_resolutions

PAPER_PRIMES = (1, 2654435761, 805459861)  # Instant-NGP, sec. 3, after eq. 4


@pytest.fixture(params=["auto", "torch"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fused C++ kernel (auto) and the pure-PyTorch reference."""
    monkeypatch.setenv(KERNEL_ENV, request.param)
    return request.param


def exact_resolutions(levels: int, base: int, finest: int) -> list[int]:
    """Instant-NGP eq. 2-3 in 50-digit decimals: N_l = floor(N_min b^l)."""
    # b = exp((ln N_max - ln N_min) / (L - 1))
    if levels == 1:
        return [base]
    with localcontext() as ctx:
        ctx.prec = 50
        growth = ((Decimal(finest).ln() - Decimal(base).ln()) / (levels - 1)).exp()
        # rounded to 30 digits first, so that N_min b^(L-1) = N_max floors to N_max
        values = [round(Decimal(base) * growth**level, 30) for level in range(levels)]
        return [int(v.to_integral_value(rounding=ROUND_FLOOR)) for v in values]


@pytest.mark.parametrize("levels", [1, 2, 3, 8, 16, 24, 32])
@pytest.mark.parametrize(("base", "finest"), [(16, 1024), (16, 2048), (2, 100), (8, 524288)])
def test_level_resolutions_match_eq2_3(levels: int, base: int, finest: int) -> None:
    """N_l = floor(N_min b^l), b = exp((ln N_max - ln N_min) / (L - 1)) (Instant-NGP eq. 2-3)."""
    assert level_resolutions(levels, base, finest) == exact_resolutions(levels, base, finest)


def test_default_encoding_uses_eq2_3_and_the_dense_rule() -> None:
    """16 levels from 16 to 1024 (eq. 2-3); a level is 1:1 iff (N_l + 1)^d <= T (sec. 3)."""
    encoding = HashEncoding(levels=16, log2_table=19, base_resolution=16, finest_resolution=1024)
    assert encoding.resolutions == exact_resolutions(16, 16, 1024)
    assert encoding.resolutions[0] == 16 and encoding.resolutions[-1] == 1024
    assert encoding.hashed == [(n + 1) ** 3 > 2**19 for n in encoding.resolutions]


def paper_hash(vertices: np.ndarray, table_size: int) -> np.ndarray:
    """Eq. 4 in uint32 arithmetic, as the paper's code: (xor_i x_i pi_i) mod T."""
    out = np.zeros(len(vertices), dtype=np.uint32)
    for axis in range(vertices.shape[1]):
        out ^= vertices[:, axis].astype(np.uint32) * np.uint32(PAPER_PRIMES[axis])
    return out % np.uint32(table_size)


def rows_read(encoding: HashEncoding, vertices: torch.Tensor, level: int) -> torch.Tensor:
    """The table row a lookup at each grid vertex reads (table row r holds r, float64)."""
    with torch.no_grad():
        rows = torch.arange(encoding.table.shape[0], dtype=torch.float64)
        encoding.table.copy_(rows[:, None].expand(-1, encoding.features))
    x = vertices.double() / encoding.resolutions[level]
    features = encoding.encode_unit(x)[:, level * encoding.features]
    return features.round().long()  # at a vertex the lookup is that vertex's row


@pytest.mark.parametrize("in_dim", [2, 3])
@pytest.mark.usefixtures("kernel")
def test_hashed_levels_read_the_eq4_row(in_dim: int) -> None:
    """Hashed levels read row (xor_i x_i pi_i) mod T (Instant-NGP eq. 4, its primes)."""
    # resolutions up to 4096 make x_i pi_i overflow 32 bits, where the paper's uint32
    # arithmetic wraps
    assert PRIMES == PAPER_PRIMES
    encoding = HashEncoding(
        in_dim, levels=6, log2_table=14, base_resolution=64, finest_resolution=4096
    ).double()
    generator = torch.Generator().manual_seed(7)
    assert any(encoding.hashed)
    for level, resolution in enumerate(encoding.resolutions):
        if not encoding.hashed[level]:
            continue
        vertices = torch.randint(0, resolution + 1, (500, in_dim), generator=generator)
        vertices[:2] = torch.tensor([[0] * in_dim, [resolution] * in_dim])
        want = paper_hash(vertices.numpy(), encoding.table_size).astype(np.int64)
        got = rows_read(encoding, vertices, level) - encoding.offsets[level]
        assert np.array_equal(got.numpy(), want)


@pytest.mark.usefixtures("kernel")
def test_dense_levels_are_one_to_one() -> None:
    """Levels with (N_l + 1)^d <= T index vertices 1:1, x + (N+1) y + (N+1)^2 z (sec. 3)."""
    encoding = HashEncoding(levels=4, log2_table=14, base_resolution=4, finest_resolution=24)
    encoding = encoding.double()
    assert not any(encoding.hashed)
    for level, n in enumerate(encoding.resolutions):
        axis = torch.arange(n + 1)
        vertices = torch.cartesian_prod(axis, axis, axis)
        got = rows_read(encoding, vertices, level) - encoding.offsets[level]
        want = vertices[:, 0] + vertices[:, 1] * (n + 1) + vertices[:, 2] * (n + 1) ** 2
        assert torch.equal(got, want) and got.unique().numel() == (n + 1) ** 3
