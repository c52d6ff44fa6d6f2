"""The voxel field's ``kernel`` option: the core's fused C++ lookup or its reference."""

from __future__ import annotations

import pytest
import torch
from test_voxel_field import make_field, make_samples, randomise

from atlas_core.api import ConfigError
from atlas_core.testing import native

pytestmark = pytest.mark.skipif(native.grid_ops() is None, reason="no C++ build here")


def test_kernel_option_picks_the_lookup_and_both_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = native.grid_ops(), []

    class Spy:
        def __getattr__(self, name: str) -> object:
            calls.append(name)
            return getattr(module, name)

    monkeypatch.setattr(native, "grid_ops", Spy)
    monkeypatch.delenv(native.GRID_ENV, raising=False)
    results = {}
    for kernel in ("torch", "auto"):
        torch.manual_seed(0)  # the same MLP for both
        field = make_field(kernel=kernel)
        randomise(field)
        calls.clear()
        out = field(make_samples())
        (out["density"].sum() + out["rgb"].sum()).backward()
        used = set(calls)
        results[kernel] = (out, field.density_grid.grad.to_dense(), used)
    assert results["torch"][2] == set()
    assert {"trilinear_forward", "trilinear_backward"} <= results["auto"][2]
    (out_t, grad_t, _), (out_c, grad_c, _) = results["torch"], results["auto"]
    assert torch.allclose(out_t["density"], out_c["density"], atol=1e-5)
    assert torch.allclose(out_t["rgb"], out_c["rgb"], atol=1e-6)
    assert torch.allclose(grad_t, grad_c, atol=1e-5)


def test_unknown_kernel_is_refused() -> None:
    with pytest.raises((ValueError, ConfigError), match="kernel must be one of"):
        make_field(kernel="cuda")
