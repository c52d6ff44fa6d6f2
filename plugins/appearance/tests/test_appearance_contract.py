"""appearance's ``atlas_wrap_field`` under the core's wrapper contract."""

from __future__ import annotations

from typing import Any, ClassVar

from atlas_core.testing import WrapperContract


class TestAppearanceWrapper(WrapperContract):
    """The per-image colour correction around the core's tiny field."""

    wrapper = "appearance"
    plugins = ("appearance",)
    settings: ClassVar[dict[str, Any]] = {"appearance.dim": 4, "appearance.hidden": 8}
