"""camopt's ``atlas_wrap_field`` under the core's wrapper contract."""

from __future__ import annotations

from atlas_core.testing import WrapperContract


class TestPoseCorrectionWrapper(WrapperContract):
    """The per-image pose corrections around the core's tiny field."""

    wrapper = "camopt"
    plugins = ("camopt",)
