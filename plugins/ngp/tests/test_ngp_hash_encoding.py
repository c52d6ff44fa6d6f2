"""HashEncoding: level layout, indexing, interpolation and gradients."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_ngp.hash_encoding import (
    KERNEL_ENV,
    PRIMES,
    HashEncoding,
    level_resolutions,
    spread,
)


@pytest.fixture(autouse=True, params=["auto", "torch"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on the fused C++ kernel (auto) and on the pure-PyTorch reference."""
    monkeypatch.setenv(KERNEL_ENV, request.param)
    return request.param


def row_numbers(encoding: HashEncoding) -> HashEncoding:
    """In float64, table row r holds (r, -r): a lookup shows which rows it read."""
    encoding = encoding.double()
    with torch.no_grad():
        rows = torch.arange(encoding.table.shape[0], dtype=torch.float64)
        encoding.table.copy_(torch.stack([rows, -rows], dim=1))
    return encoding


def level_features(encoding: HashEncoding, x: torch.Tensor, level: int) -> torch.Tensor:
    """The F features of one level for points in [0, 1]^3."""
    f = encoding.features
    return encoding.encode_unit(x)[:, level * f : (level + 1) * f]


def vertices(resolution: int) -> torch.Tensor:
    """All integer vertices [(res+1)^3, 3] of a level's grid."""
    axis = torch.arange(resolution + 1)
    return torch.cartesian_prod(axis, axis, axis)


def naive_encoding(encoding: HashEncoding, x: torch.Tensor) -> torch.Tensor:
    """Reference: per level, per corner, with Python-level hashing (differentiable)."""
    outs = []
    for level, res in enumerate(encoding.resolutions):
        pos = x * res
        cell = torch.minimum(pos.detach().floor(), torch.tensor(res - 1.0, dtype=x.dtype))
        frac = pos - cell
        cell = cell.long()
        acc = 0.0
        for corner in range(8):
            bits = torch.tensor([(corner >> k) & 1 for k in range(3)])
            v = cell + bits
            if encoding.hashed[level]:
                row = (v[:, 0] * PRIMES[0]) ^ (v[:, 1] * PRIMES[1]) ^ (v[:, 2] * PRIMES[2])
                row = row % encoding.table_size
            else:
                row = v[:, 0] + v[:, 1] * (res + 1) + v[:, 2] * (res + 1) ** 2
            weight = torch.where(bits.bool(), frac, 1 - frac).prod(dim=-1, keepdim=True)
            acc = acc + weight * encoding.table[row + encoding.offsets[level]]
        outs.append(acc)
    return torch.cat(outs, dim=-1)


def test_resolutions_grow_geometrically() -> None:
    res = level_resolutions(8, 16, 512)
    assert res[0] == 16 and res[-1] == 512
    ratios = [b / a for a, b in zip(res, res[1:], strict=False)]
    assert all(abs(r - 32 ** (1 / 7)) < 0.06 for r in ratios)
    assert level_resolutions(1, 16, 512) == [16]


def test_layout_dense_then_hashed_levels() -> None:
    enc = HashEncoding(levels=8, log2_table=12, base_resolution=4, finest_resolution=64)
    assert enc.out_dim == 16 and enc.table.shape[1] == 2
    for res, hashed, size in zip(enc.resolutions, enc.hashed, enc.sizes, strict=True):
        assert hashed == ((res + 1) ** 3 > 4096)
        assert size == (4096 if hashed else (res + 1) ** 3)
    assert enc.table.shape[0] == sum(enc.sizes)
    spans = sorted(zip(enc.offsets, enc.sizes, strict=True))
    assert all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:], strict=False))


def test_table_init_is_uniform_small() -> None:
    table = HashEncoding(levels=4, log2_table=14).table.detach()
    assert table.abs().max() <= 1e-4 and table.std() > 3e-5


def test_indices_stay_in_their_level() -> None:
    enc = HashEncoding(levels=6, log2_table=10, base_resolution=4, finest_resolution=200)
    x = torch.cat([torch.rand(5000, 3), torch.eye(3), torch.ones(1, 3), torch.zeros(1, 3)])
    for group in enc.groups():
        rows, frac = group.corners(x.t().contiguous(), 1)
        weights = spread(torch.ones_like(frac[:, 0]), frac)  # [count, 8, n]
        for i, level in enumerate(range(group.levels.start, group.levels.stop)):
            low = enc.offsets[level]
            assert rows[i].min() >= low and rows[i].max() < low + enc.sizes[level]
        assert torch.allclose(weights.sum(1), torch.ones_like(weights[:, 0]))


def test_dense_levels_are_collision_free_and_exact_on_vertices() -> None:
    enc = row_numbers(
        HashEncoding(levels=3, log2_table=16, base_resolution=4, finest_resolution=16)
    )
    assert not any(enc.hashed)
    for level, res in enumerate(enc.resolutions):
        v = vertices(res)
        got = level_features(enc, v.double() / res, level)
        expect = enc.offsets[level] + v[:, 0] + v[:, 1] * (res + 1) + v[:, 2] * (res + 1) ** 2
        assert torch.equal(got[:, 0], expect.double()) and torch.equal(got[:, 1], -got[:, 0])
        assert got[:, 0].unique().numel() == (res + 1) ** 3  # one row per vertex


def test_hashed_vertex_reads_its_spatial_hash_row() -> None:
    enc = row_numbers(
        HashEncoding(levels=2, log2_table=10, base_resolution=32, finest_resolution=64)
    )
    assert all(enc.hashed)
    for level, res in enumerate(enc.resolutions):
        v = vertices(res)[::7]
        got = level_features(enc, v.double() / res, level)[:, 0].long()
        h = [(a * PRIMES[0]) ^ (b * PRIMES[1]) ^ (c * PRIMES[2]) for a, b, c in v.tolist()]
        expect = torch.tensor(h) % enc.table_size + enc.offsets[level]
        assert torch.equal(got, expect)


def test_interpolation_weights_sum_to_one() -> None:
    enc = HashEncoding(levels=5, log2_table=12).double()
    with torch.no_grad():
        enc.table.fill_(0.25)
    out = enc.encode_unit(torch.rand(2000, 3, dtype=torch.float64))
    assert torch.allclose(out, torch.full_like(out, 0.25))


@pytest.mark.parametrize("level", [0, 3])
def test_linear_along_a_cell_edge(level: int) -> None:
    enc = HashEncoding(levels=4, log2_table=10, base_resolution=6, finest_resolution=40).double()
    torch.manual_seed(1)
    with torch.no_grad():
        enc.table.normal_()
    res = enc.resolutions[level]
    t = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    start = torch.tensor([[2.0, 3.0, 1.0]], dtype=torch.float64)
    points = (start + t * torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)) / res
    f = level_features(enc, points, level)
    assert torch.allclose(f, (1 - t) * f[:1] + t * f[-1:], atol=1e-12)
    assert not torch.allclose(f[0], f[-1])


def test_matches_naive_reference_values_and_gradients() -> None:
    torch.manual_seed(0)
    enc = HashEncoding(levels=6, log2_table=11, base_resolution=3, finest_resolution=90).double()
    with torch.no_grad():
        enc.table.normal_()
    x = torch.rand(300, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(300, enc.out_dim, dtype=torch.float64)
    out = enc.encode_unit(x)
    (out * weights).sum().backward()
    table_grad, x_grad = enc.table.grad.clone(), x.grad.clone()
    enc.table.grad, x.grad = None, None
    reference = naive_encoding(enc, x)
    (reference * weights).sum().backward()
    assert torch.allclose(out, reference, atol=1e-12)
    assert torch.allclose(table_grad, enc.table.grad, atol=1e-10)
    assert torch.allclose(x_grad, x.grad, atol=1e-8)


def test_float32_fast_path_matches_float64() -> None:
    torch.manual_seed(2)
    fast = HashEncoding(levels=8, log2_table=12, finest_resolution=256)
    with torch.no_grad():
        fast.table.normal_()
    exact = HashEncoding(levels=8, log2_table=12, finest_resolution=256).double()
    exact.load_state_dict(fast.state_dict())
    x = torch.rand(40_000, 3)  # several chunks
    weights = torch.randn(40_000, fast.out_dim)
    for enc, inputs in ((fast, x), (exact, x.double())):
        (enc.encode_unit(inputs) * weights.to(inputs.dtype)).sum().backward()
    assert torch.allclose(fast.encode_unit(x).double(), exact.encode_unit(x.double()), atol=1e-3)
    assert torch.allclose(fast.table.grad.double(), exact.table.grad, rtol=1e-4, atol=1e-3)


def test_one_feature_and_four_features() -> None:
    for features in (1, 4):
        enc = HashEncoding(levels=3, features=features, log2_table=10).double()
        with torch.no_grad():
            enc.table.normal_()
        x = torch.rand(100, 3, dtype=torch.float64)
        out = enc.encode_unit(x)
        assert out.shape == (100, 3 * features)
        assert torch.allclose(out, naive_encoding(enc, x), atol=1e-12)
        out.square().sum().backward()
        assert enc.table.grad.abs().sum() > 0


def test_world_positions_use_the_scene_box() -> None:
    context = SimpleNamespace(scene=SimpleNamespace(bounds=(-2.0, -1.0, 0.0, 2.0, 3.0, 1.0)))
    world = HashEncoding(levels=4, log2_table=12, context=context)
    unit = HashEncoding(levels=4, log2_table=12)
    unit.load_state_dict(world.state_dict())
    x = torch.rand(50, 3)
    low, size = torch.tensor([-2.0, -1.0, 0.0]), torch.tensor([4.0, 4.0, 1.0])
    assert torch.allclose(world(low + x * size), unit(x), atol=1e-6)
    # outside the box is clamped to the nearest face
    assert torch.allclose(world(torch.tensor([[9.0, 9.0, 9.0]])), unit(torch.ones(1, 3)))


def test_two_dimensional_inputs() -> None:
    enc = HashEncoding(in_dim=2, levels=3, log2_table=8, base_resolution=4, finest_resolution=32)
    out = enc(torch.rand(64, 2))
    assert out.shape == (64, 6) and enc.sizes[0] == 25


@pytest.mark.parametrize(
    "options",
    [
        {"in_dim": 5},
        {"levels": 0},
        {"log2_table": 2},
        {"base_resolution": 64, "finest_resolution": 8},
    ],
)
def test_bad_options_raise(options: dict) -> None:
    with pytest.raises(ValueError):
        HashEncoding(**options)


def test_deterministic_under_a_seed() -> None:
    torch.manual_seed(3)
    a = HashEncoding(levels=4, log2_table=12)
    torch.manual_seed(3)
    b = HashEncoding(levels=4, log2_table=12)
    x = torch.rand(1000, 3)
    assert torch.equal(a.table, b.table)
    assert torch.equal(a.encode_unit(x), b.encode_unit(x))
