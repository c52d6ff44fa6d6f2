"""Shared contracts for the dtu data kind and the mask loss, plus registration and the loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from atlas_plugin_dtu import MaskLoss, load_dtu

from atlas_core.api import RayBundle
from atlas_core.testing import DatasetContract, LossContract


class TestDTUDataset(DatasetContract):
    """The generated scan through the registry."""

    name = "dtu"
    plugins = ("dtu",)
    options: ClassVar[dict[str, Any]] = {"test_every": 4, "use_mask": True}

    @pytest.fixture
    def contract_data(self, dtu_scan: Path) -> Path:
        """The generated scan instead of a blender folder."""
        return dtu_scan


class TestMaskLoss(LossContract):
    """The mask loss inside a run's pipeline."""

    name = "mask"
    plugins = ("dtu",)


def test_entry_point_registers_data_kind_and_loss(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("dtu",))
    assert loaded.registry.get("datasets", "dtu").factory is load_dtu
    assert loaded.registry.get("losses", "mask").factory is MaskLoss
    assert loaded.infos["dtu"].distribution == "atlas-plugin-dtu"
    assert loaded.infos["dtu"].components == {"datasets": ["dtu"], "losses": ["mask"]}


def rays_with_alpha(alpha: torch.Tensor) -> RayBundle:
    """Rays whose targets have the given alpha [R]."""
    count = len(alpha)
    zeros = torch.zeros(count, 1)
    rgba = torch.cat([torch.rand(count, 3), alpha[:, None]], dim=1)
    return RayBundle(torch.zeros(count, 3), torch.ones(count, 3) / 3**0.5, zeros, zeros + 1,
                     zeros, torch.zeros(count, dtype=torch.long), rgba=rgba)  # fmt: skip


def test_mask_loss_is_cross_entropy_of_opacity_against_alpha() -> None:
    alpha = torch.tensor([1.0, 0.0, 1.0, 0.0])
    rays = rays_with_alpha(alpha)
    loss = MaskLoss()
    acc = torch.tensor([[0.9], [0.2], [0.6], [0.0]], requires_grad=True)
    value = loss(rays, {"acc": acc}, {})
    clamped = acc.detach().clamp(1e-3, 1 - 1e-3)[:, 0]
    expected = -(alpha * clamped.log() + (1 - alpha) * (1 - clamped).log()).mean()
    assert torch.isclose(value, expected)
    value.backward()
    assert acc.grad[0, 0] < 0 and acc.grad[1, 0] > 0  # pushes opacity towards the mask
    perfect = loss(rays, {"acc": alpha[:, None].clone()}, {})
    assert perfect < 0.01 < value
    both = loss(rays, {"acc": alpha[:, None].clone(), "coarse_acc": acc.detach()}, {})
    assert torch.isclose(both, perfect + value.detach())
