"""upsample's ``atlas_wrap_field`` (a feature head on any field) under the wrapper contract."""

from __future__ import annotations

from typing import Any, ClassVar

from atlas_core.testing import WrapperContract


class TestFeatureField(WrapperContract):
    """The feature field around the core's tiny field."""

    wrapper = "upsample"
    plugins = ("upsample",)
    settings: ClassVar[dict[str, Any]] = {"upsample.features": 4}

    def check_outputs(self, outputs: dict, context: object) -> None:
        """The field's outputs plus ``features`` [N, 4]."""
        super().check_outputs(outputs, context)
        assert outputs["features"].shape == (outputs["_positions"].shape[0], 4)
