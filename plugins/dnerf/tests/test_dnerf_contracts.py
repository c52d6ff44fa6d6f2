"""dnerf's ``atlas_wrap_field`` under the core's wrapper contract, for each deformation."""

from __future__ import annotations

from typing import Any, ClassVar

from atlas_core.testing import WrapperContract


class TestMLPDeformation(WrapperContract):
    """The D-NeRF MLP deformation around the core's tiny field."""

    wrapper = "dnerf"
    plugins = ("dnerf",)
    with_times = True
    settings: ClassVar[dict[str, Any]] = {
        "data.kind": "dnerf",
        "dnerf.deformation": "mlp",
        "dnerf.width": 16,
    }


class TestPlanesDeformation(TestMLPDeformation):
    """The space-time planes deformation."""

    settings: ClassVar[dict[str, Any]] = {
        **TestMLPDeformation.settings,
        "dnerf.deformation": "planes",
    }


class TestSplineDeformation(TestMLPDeformation):
    """The spline deformation."""

    settings: ClassVar[dict[str, Any]] = {
        **TestMLPDeformation.settings,
        "dnerf.deformation": "spline",
    }
