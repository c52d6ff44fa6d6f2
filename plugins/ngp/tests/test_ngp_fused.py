"""The fused C++ hash encoding against the pure-PyTorch reference, and its fallback."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_ngp import fused
from atlas_plugin_ngp.field import NGPField
from atlas_plugin_ngp.hash_encoding import KERNEL_ENV, HashEncoding

from atlas_core.testing import break_kernel_builds

needs_build = pytest.mark.skipif(fused.extension() is None, reason="no C++ toolchain")


def edge_points(n: int, dim: int = 3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random points plus the box's corners, faces, grid vertices and points outside it."""
    torch.manual_seed(5)
    inside = torch.rand(n, dim, dtype=dtype)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=dtype)] * dim)
    faces = inside[:64].clone()
    faces[:, 0] = 1.0
    faces[32:, 1] = 0.0
    vertices = torch.randint(0, 17, (64, dim)).to(dtype) / 16  # vertices of level 0
    outside = torch.rand(64, dim, dtype=dtype) * 3 - 1  # in [-1, 2]: clamped
    near = torch.tensor([[1 - 1e-7, 1e-7, 0.5]], dtype=dtype)[:, :dim]
    return torch.cat([inside, corners, faces, vertices, outside, near])


def run(enc: HashEncoding, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Output, table gradient and point gradient of one weighted lookup."""
    enc.table.grad = None
    points = x.clone().requires_grad_(True)
    out = enc.encode_unit(points)
    (out * weights).sum().backward()
    return out.detach(), enc.table.grad.clone(), points.grad.clone()


def pair(**options: object) -> tuple[HashEncoding, HashEncoding]:
    """A fused and a reference encoding sharing a random table."""
    torch.manual_seed(0)
    fast = HashEncoding(**options, kernel="cpp")
    with torch.no_grad():
        fast.table.normal_(0.0, 0.1)
    reference = HashEncoding(**options, kernel="torch")
    reference.load_state_dict(fast.state_dict())
    return fast, reference


@needs_build
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference_at_the_default_size(dtype: torch.dtype) -> None:
    fast, reference = pair()  # 16 levels x 2 features, 2^17 rows: dense and hashed levels
    fast, reference = fast.to(dtype), reference.to(dtype)
    x = edge_points(6000, dtype=dtype)
    weights = torch.randn(x.shape[0], fast.out_dim, dtype=dtype)
    got, expect = run(fast, x, weights), run(reference, x, weights)
    assert fast.last_kernel == "cpp" and reference.last_kernel == "torch"
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(got[0], expect[0], rtol=tol, atol=tol)  # features
    assert torch.allclose(got[1], expect[1], rtol=tol, atol=tol)  # table gradient
    # point gradient: sums of N_l (up to 1024) times features, relative tolerance
    scale = expect[2].abs().max()
    assert torch.allclose(got[2], expect[2], rtol=tol, atol=tol * scale)
    outside = (x < 0) | (x > 1)
    assert outside.any() and got[2][outside].eq(0).all()  # clamped coordinates: no gradient


@needs_build
@pytest.mark.parametrize(("dim", "features"), [(2, 2), (3, 1), (3, 4), (3, 8)])
def test_matches_reference_other_shapes(dim: int, features: int) -> None:
    options = {"in_dim": dim, "levels": 5, "features": features, "log2_table": 10}
    fast, reference = pair(**options, base_resolution=4, finest_resolution=128)
    fast, reference = fast.double(), reference.double()
    x = edge_points(500, dim, torch.float64)
    weights = torch.randn(x.shape[0], fast.out_dim, dtype=torch.float64)
    for got, expect in zip(run(fast, x, weights), run(reference, x, weights), strict=True):
        assert torch.allclose(got, expect, rtol=1e-10, atol=1e-10)


@needs_build
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_both_race_free_strategies_agree(threads: int) -> None:
    fast, _ = pair(levels=6, log2_table=12, finest_resolution=256)
    x = edge_points(9000).t().contiguous()  # several chunks of points
    grad = torch.randn(x.shape[1], 6, 2)
    module, table = fused.extension(), fast.table.detach()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        by_levels, by_copies = (
            module.backward_table(x, grad, table.shape[0], *fast._levels, fast.table_size, how)
            for how in (fused.STRATEGY_LEVELS, fused.STRATEGY_COPIES)
        )
    finally:
        torch.set_num_threads(before)
    assert torch.allclose(by_levels, by_copies, atol=1e-5)


@needs_build
def test_no_points_and_no_grad() -> None:
    fast, reference = pair(levels=4, log2_table=10)
    assert fast.encode_unit(torch.empty(0, 3)).shape == (0, 8)
    x = torch.rand(100, 3)
    with torch.no_grad():
        assert torch.allclose(fast.encode_unit(x), reference.encode_unit(x), atol=1e-6)


def test_kernel_option_is_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the fused kernel ran although kernel=torch")

    monkeypatch.setattr(fused, "fused_lookup", refuse)
    encoding = HashEncoding(levels=4, log2_table=10, kernel="torch")
    encoding.encode_unit(torch.rand(10, 3)).sum().backward()
    assert encoding.last_kernel == "torch"
    context = SimpleNamespace(scene=SimpleNamespace(bounds=(-1.0,) * 3 + (1.0,) * 3))
    field = NGPField(context, levels=4, log2_table=10, kernel="torch")
    assert field.encoding.kernel == "torch"
    field.density(torch.rand(10, 3))
    assert field.encoding.last_kernel == "torch"
    with pytest.raises(ValueError, match="kernel"):
        HashEncoding(kernel="fast")  # type: ignore[arg-type]


@needs_build
def test_auto_uses_the_fused_kernel_unless_the_environment_says_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoding = HashEncoding(levels=4, log2_table=10)
    encoding.encode_unit(torch.rand(10, 3))
    assert encoding.last_kernel == "cpp"
    monkeypatch.setenv(KERNEL_ENV, "torch")
    encoding.encode_unit(torch.rand(10, 3))
    assert encoding.last_kernel == "torch"
    explicit = HashEncoding(levels=4, log2_table=10, kernel="cpp")  # the option wins
    explicit.encode_unit(torch.rand(10, 3))
    assert explicit.last_kernel == "cpp"
    encoding.encode_unit(torch.rand(10, 3).double())  # float64 points: cast to the table
    assert encoding.last_kernel == "torch"


def test_failed_build_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    break_kernel_builds(monkeypatch)
    with pytest.warns(RuntimeWarning, match="could not be built"):  # built when created
        encoding = HashEncoding(levels=4, log2_table=10)
    out = encoding.encode_unit(torch.rand(10, 3))
    assert encoding.last_kernel == "torch" and out.shape == (10, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        encoding.encode_unit(torch.rand(10, 3))
    with pytest.raises(RuntimeError, match="kernel=cpp"):
        HashEncoding(levels=4, log2_table=10, kernel="cpp").encode_unit(torch.rand(10, 3))


def test_other_devices_use_the_reference() -> None:
    table = torch.empty(10, 2)
    assert fused.supports(torch.empty(3, 5), table)
    assert not fused.supports(torch.empty(3, 5, device="meta"), table)
    assert not fused.supports(torch.empty(1, 5), table)  # 1-d inputs
    assert not fused.supports(torch.empty(3, 5, dtype=torch.float16), table.half())


def test_source_ships_in_the_wheel() -> None:
    assert Path(fused.source_path()).is_file()
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "csrc/*.cpp" in package_data["atlas_plugin_ngp"]
