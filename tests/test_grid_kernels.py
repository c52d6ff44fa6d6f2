"""The C++ grid kernels (``csrc/grid_ops.cpp``) against their PyTorch references.

``grid.sample`` must equal ``corners`` + ``interpolate`` (values, inside flags and the
grid gradient), and the occupancy march must give the reference's samples exactly; the
``kernel`` options and ``ATLAS_GRID_KERNEL`` must choose the path they name.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch
from test_occupancy import Ball, make_sampler, rays

from atlas_core.api import tag_parameter
from atlas_core.engine.optimizers.masked_adam import MaskedAdam
from atlas_core.nerf import grid, native
from atlas_core.nerf.rays import RayBundle

SHAPE = (9, 7, 11)
LOW, HIGH = torch.tensor([-1.0, -0.5, -1.2]), torch.tensor([1.0, 0.7, 1.3])

pytestmark = pytest.mark.skipif(native.grid_ops() is None, reason="no C++ build here")


class Counting:
    """Wraps the compiled module, counting calls of each kernel."""

    def __init__(self, module: object) -> None:
        self.module, self.calls = module, {}

    def __getattr__(self, name: str) -> object:
        function = getattr(self.module, name)

        def counted(*args: object) -> object:
            self.calls[name] = self.calls.get(name, 0) + 1
            return function(*args)

        return counted


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    wrapper = Counting(native.grid_ops())
    monkeypatch.setattr(native, "grid_ops", lambda: wrapper)
    monkeypatch.delenv(native.GRID_ENV, raising=False)
    return wrapper


def points(count: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    """Points inside and outside the box, some on its faces and corners."""
    generator = torch.Generator().manual_seed(seed)
    span = HIGH - LOW
    p = LOW - 0.2 * span + 1.4 * span * torch.rand(count, 3, generator=generator)
    p[:4] = torch.stack([LOW, HIGH, torch.stack([LOW[0], HIGH[1], LOW[2]]), (LOW + HIGH) / 2])
    p[4:8, 0] = HIGH[0]  # on a face
    return p.to(dtype)


def reference(values: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    at = grid.corners(p, LOW, HIGH, SHAPE)
    return grid.interpolate(values, at, sparse=values.requires_grad), at.inside


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 3, 12])
def test_fused_lookup_matches_the_reference(
    counting: Counting, dtype: torch.dtype, channels: int
) -> None:
    rows = SHAPE[0] * SHAPE[1] * SHAPE[2]
    values = torch.randn(rows, channels, dtype=dtype, generator=torch.Generator().manual_seed(1))
    values.requires_grad_(True)
    p = points(3000, dtype)
    fused, inside = grid.sample(values, p, LOW, HIGH, SHAPE, sparse=True, kernel="cpp")
    expected, expected_inside = reference(values, p)
    assert torch.equal(inside, expected_inside) and 0 < int(inside.sum()) < len(p)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(fused, expected, atol=tolerance, rtol=0)
    weights = torch.randn_like(fused)
    (got,) = torch.autograd.grad((fused * weights).sum(), values)
    (want,) = torch.autograd.grad((expected * weights).sum(), values)
    assert got.is_sparse
    rows_seen = got._indices()[0]
    assert torch.all(rows_seen[1:] > rows_seen[:-1])  # coalesced: increasing, distinct
    assert torch.allclose(got.to_dense(), want.to_dense(), atol=tolerance * 10, rtol=0)
    # the scratch is left clear: a second backward gives the same gradient
    fused, _ = grid.sample(values, p, LOW, HIGH, SHAPE, sparse=True, kernel="cpp")
    (again,) = torch.autograd.grad((fused * weights).sum(), values)
    assert torch.equal(again.to_dense(), got.to_dense())
    # the C++ kernels ran (a silent fallback would compare the reference with itself)
    assert counting.calls == {"trilinear_forward": 2, "trilinear_backward": 2}


def test_kernel_option_and_environment_choose_the_path(
    counting: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], 2)
    p = points(100)
    torch_values, _ = grid.sample(values, p, LOW, HIGH, SHAPE, kernel="torch")
    assert counting.calls == {}
    auto_values, _ = grid.sample(values, p, LOW, HIGH, SHAPE)
    assert counting.calls == {"trilinear_forward": 1}
    assert torch.allclose(auto_values, torch_values, atol=1e-6)
    monkeypatch.setenv(native.GRID_ENV, "torch")
    grid.sample(values, p, LOW, HIGH, SHAPE)
    assert counting.calls == {"trilinear_forward": 1}
    grid.sample(values, p, LOW, HIGH, SHAPE, kernel="cpp")  # the option beats the variable
    assert counting.calls == {"trilinear_forward": 2}
    monkeypatch.setenv(native.GRID_ENV, "fast")
    with pytest.raises(ValueError, match="ATLAS_GRID_KERNEL"):
        grid.sample(values, p, LOW, HIGH, SHAPE)
    with pytest.raises(ValueError, match="kernel must be one of"):
        grid.check_kernel("gpu")


def test_inputs_the_kernel_cannot_take_use_the_reference(counting: Counting) -> None:
    values = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], 1, requires_grad=True)
    p = points(50).requires_grad_(True)  # gradients for the points: only the reference
    out, _ = grid.sample(values, p, LOW, HIGH, SHAPE, sparse=True, kernel="cpp")
    out.sum().backward()
    assert p.grad is not None and counting.calls == {}
    dense, _ = grid.sample(values, p.detach(), LOW, HIGH, SHAPE, sparse=False, kernel="cpp")
    assert counting.calls == {}  # a dense gradient is the reference's job
    assert dense.requires_grad


def test_without_a_build_auto_falls_back_and_cpp_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "grid_ops", lambda: None)
    values = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], 2)
    p = points(40)
    out, inside = grid.sample(values, p, LOW, HIGH, SHAPE)
    assert torch.allclose(out, reference(values, p)[0])
    with pytest.raises(RuntimeError, match="could not be built"):
        grid.sample(values, p, LOW, HIGH, SHAPE, kernel="cpp")


def test_masked_adam_takes_the_fused_gradient_as_given() -> None:
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], 4, generator=generator)
    p, weights = points(500), torch.randn(500, 4, generator=generator)
    results = []
    for kernel in ("cpp", "torch"):
        values = torch.nn.Parameter(start.clone())
        tag_parameter(values, masked_updates=True)
        optimizer = MaskedAdam([values], lr=0.1)
        for _ in range(2):
            optimizer.zero_grad()
            out, _ = grid.sample(values, p, LOW, HIGH, SHAPE, sparse=True, kernel=kernel)
            (out * weights).sum().backward()
            optimizer.step()
        results.append((values.detach().clone(), bool(optimizer.scratch)))
    (fused, fused_scratch), (plain, plain_scratch) = results
    assert torch.allclose(fused, plain, atol=1e-6)
    assert not fused_scratch and plain_scratch  # no summing pass for the coalesced rows


def box_rays(count: int) -> RayBundle:
    """Rays through the box, some missing it and some of zero length."""
    bundle = rays(count)
    bundle.far[:4] = bundle.near[:4]  # empty intervals
    bundle.origins[4:8] += 10.0  # far from the box: clipped to nothing
    return bundle


@pytest.mark.parametrize("training", [False, True])
def test_fused_march_gives_the_reference_samples(counting: Counting, training: bool) -> None:
    sampler = make_sampler(Ball(), resolution=32, early_stop=0.0)
    sampler.train(training)
    sampler.grid.update(Ball().density, sampler.step_size, 0.0, 0.01, all_cells=True)
    sampler.grid.mask |= torch.rand(32**3, generator=torch.Generator().manual_seed(0)) < 0.01
    sampler.grid.refresh_derived()
    bundle = box_rays(300)
    marched = {}
    for kernel in ("torch", "cpp"):
        sampler.kernel = kernel
        torch.manual_seed(5)  # the same jitter for both
        marched[kernel] = sampler.march(bundle)
    assert counting.calls == {"march": 1}
    (ray_t, s_t), (ray_c, s_c) = marched["torch"], marched["cpp"]
    assert len(ray_t) > 1000
    assert torch.equal(ray_t, ray_c) and torch.equal(s_t, s_c)


def test_sampler_kernel_option_reaches_the_march(counting: Counting) -> None:
    sampler = make_sampler(Ball(), resolution=16, kernel="torch")
    sampler.forward(rays(20), Ball())
    assert "march" not in counting.calls
    sampler = make_sampler(Ball(), resolution=16)
    sampler.forward(rays(20), Ball())
    assert counting.calls["march"] == 1
    with pytest.raises(ValueError, match="kernel must be one of"):
        make_sampler(Ball(), kernel="cuda")


def test_source_ships_in_the_wheel() -> None:
    source = Path(native.__file__).parent / "csrc" / "grid_ops.cpp"
    assert source.is_file()
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "csrc/*.cpp" in package_data["atlas_core.nerf"]


def test_components_build_the_kernels_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    monkeypatch.setattr(native, "grid_ops", lambda: builds.append(1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(native.GRID_ENV, raising=False)
    make_sampler(Ball(), kernel="torch")
    grid.check_kernel("torch")
    assert builds == []
    make_sampler(Ball())
    grid.check_kernel("auto")
    assert builds == [1, 1]
