"""The rig field meets the core's field contract, alone and wrapped by dnerf."""

from __future__ import annotations

from typing import Any, ClassVar

from atlas_core.testing import FieldContract, WrapperContract, requires_plugins

SMALL: dict[str, Any] = {"points": 512, "features": 4, "neighbours": 4, "width": 16}


class TestRigFieldContract(FieldContract):
    """The defaults' layout, with the occupancy sampler the plugin chooses."""

    name = "rig"
    plugins = ("rig",)
    options: ClassVar[dict[str, Any]] = SMALL
    settings: ClassVar[dict[str, Any]] = {"sampler.resolution": 8}


class TestRigRandomLayoutContract(FieldContract):
    """Uniform points that stay where they start, colour without the view direction."""

    name = "rig"
    plugins = ("rig",)
    options: ClassVar[dict[str, Any]] = {
        **SMALL,
        "layout": "random",
        "view_dependent": False,
        "position_lr_scale": 0.0,
    }
    settings: ClassVar[dict[str, Any]] = {"sampler": "stratified", "sampler.samples": 8}


@requires_plugins("dnerf")
class TestDNeRFAroundRigContract(WrapperContract):
    """dnerf's deformation around the rig field keeps the contract and its density()."""

    wrapper = "dnerf"
    name = "rig"
    plugins = ("dnerf", "rig")
    with_times = True
    options: ClassVar[dict[str, Any]] = SMALL
    settings: ClassVar[dict[str, Any]] = {
        "data.kind": "dnerf",
        "dnerf.width": 16,
        "sampler.resolution": 8,
    }
