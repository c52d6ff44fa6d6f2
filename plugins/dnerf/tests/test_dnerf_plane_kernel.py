"""The fused C++ K-Planes lookup against grid_sample, and the field's kernel option."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest
import torch
from atlas_plugin_dnerf import plane_product
from atlas_plugin_dnerf.plane_product import KERNEL_ENV, sample_planes
from test_dnerf_kplanes import kplanes, samples

from atlas_core.testing import break_kernel_builds

needs_build = pytest.mark.skipif(plane_product.extension() is None, reason="no C++ toolchain")


def edge_coords(planes: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Random coordinates in [-1.3, 1.3]^2 (border-clamped outside) plus the exact edges,
    corners and cell vertices of a 7x9 plane: [planes, N, 2]."""
    torch.manual_seed(3)
    coords = torch.rand(planes, n, 2, dtype=dtype) * 2.6 - 1.3
    coords[:, :8] = torch.tensor([-1.0, 1.0], dtype=dtype)[torch.randint(0, 2, (planes, 8, 2))]
    coords[:, 8:16, 0] = torch.randint(0, 9, (planes, 8)).to(dtype) / 4 - 1  # on vertices
    coords[:, 8:16, 1] = torch.randint(0, 7, (planes, 8)).to(dtype) / 3 - 1
    return coords


class Spy:
    """The compiled module, counting its forward and backward calls."""

    def __init__(self, module: object):
        self.module, self.calls = module, {"forward": 0, "backward": 0}

    def __getattr__(self, name: str) -> object:
        self.calls[name] += 1
        return getattr(self.module, name)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Count the C++ kernel's calls (what runs, not what the field says it ran)."""
    watcher = Spy(plane_product.extension())
    monkeypatch.setattr(plane_product, "extension", lambda: watcher)
    return watcher


def reference(planes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """grid_sample lookups multiplied over planes: what the kernel computes."""
    return sample_planes(planes, coords).prod(dim=0)


@needs_build
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("count", [1, 3])
def test_matches_grid_sample_and_its_gradient(dtype: torch.dtype, count: int, spy: Spy) -> None:
    planes = torch.randn(count, 5, 7, 9, dtype=dtype, requires_grad=True)
    coords = edge_coords(count, 500, dtype)
    weights = torch.randn(500, 5, dtype=dtype)
    fused = plane_product.plane_product(planes, coords, fused=True)
    (grad_fused,) = torch.autograd.grad((fused * weights).sum(), planes)
    expected = reference(planes, coords)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), planes)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(fused, expected, atol=tol, rtol=tol)
    assert torch.allclose(grad_fused, grad_expected, atol=tol * 10, rtol=tol)
    assert spy.calls == {"forward": 1, "backward": 1}  # the C++ kernel ran both ways


@needs_build
def test_gradcheck_and_inference_without_a_graph() -> None:
    planes = torch.randn(3, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    coords = edge_coords(3, 40, torch.float64)
    assert torch.autograd.gradcheck(lambda p: plane_product.plane_product(p, coords, True), planes)
    with torch.no_grad():
        out = plane_product.plane_product(planes, coords, True)
    assert not out.requires_grad
    assert torch.allclose(out, reference(planes.detach(), coords), atol=1e-12)
    assert plane_product.plane_product(planes, coords[:, :0], True).shape == (0, 2)


def test_coordinates_that_need_a_gradient_take_the_reference() -> None:
    planes = torch.randn(3, 2, 4, 5)
    coords = torch.rand(3, 10, 2, requires_grad=True)
    assert not plane_product.use_fused("auto", planes, coords)
    assert not plane_product.use_fused("cpp", planes.half(), coords.detach().half())
    with torch.no_grad():  # no gradient wanted: the coordinates' flag does not matter
        assert plane_product.use_fused("auto", planes, coords) == (
            plane_product.extension() is not None
        )


def test_field_kernel_option_is_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the fused kernel ran although kernel=torch")

    monkeypatch.setattr(plane_product._FusedPlaneProduct, "apply", refuse)
    field = kplanes(kernel="torch")
    out = field(samples(16, 0.4))
    (out["density"].sum() + out["rgb"].sum()).backward()
    assert field.last_kernel == "torch"
    with pytest.raises(ValueError, match="kernel"):
        kplanes(kernel="fast")


@needs_build
def test_field_outputs_and_gradients_agree_on_both_kernels(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    torch.manual_seed(0)
    fast = kplanes(kernel="cpp").double()
    slow = kplanes(kernel="torch").double()
    slow.load_state_dict(fast.state_dict())
    positions = torch.rand(64, 3, dtype=torch.float64) * 2.4 - 1.2  # some outside the box
    outputs = []
    for field in (fast, slow):
        density = field.density(positions, torch.full((64, 1), 0.7, dtype=torch.float64))
        density.sum().backward()
        outputs.append((density, [p.grad for p in field.time_planes]))
        if field is fast:  # two scales, space and time groups: four calls each way
            assert spy.calls == {"forward": 4, "backward": 4}
    assert spy.calls == {"forward": 4, "backward": 4}  # none from the torch field
    assert fast.last_kernel == "cpp" and slow.last_kernel == "torch"
    assert torch.allclose(outputs[0][0], outputs[1][0], atol=1e-10)
    for a, b in zip(outputs[0][1], outputs[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    monkeypatch.setenv(KERNEL_ENV, "torch")  # the environment overrides auto only
    auto = kplanes()
    auto.density(torch.rand(4, 3), torch.zeros(4, 1))
    assert auto.last_kernel == "torch" and spy.calls["forward"] == 4
    fast.density(torch.rand(4, 3).double(), torch.zeros(4, 1, dtype=torch.float64))
    assert fast.last_kernel == "cpp"


def test_failed_build_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    break_kernel_builds(monkeypatch)
    with pytest.warns(RuntimeWarning, match="could not be built"):  # built when created
        field = kplanes()
    field.density(torch.rand(4, 3), torch.zeros(4, 1))
    assert field.last_kernel == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        field.density(torch.rand(4, 3), torch.zeros(4, 1))
    with pytest.raises(RuntimeError, match="kernel=cpp"):
        kplanes(kernel="cpp").density(torch.rand(4, 3), torch.zeros(4, 1))


def test_source_ships_in_the_wheel() -> None:
    package = Path(plane_product.__file__).parent
    assert (package / "csrc" / "plane_product.cpp").is_file()
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "csrc/*.cpp" in package_data["atlas_plugin_dnerf"]
