"""An importable plugin module that tests expose through a fake entry point."""

from __future__ import annotations

from atlas_core import hookimpl
from atlas_core.nerf.fields import TinyField


@hookimpl
def atlas_register_fields(register) -> None:  # noqa: ANN001
    """Register one field."""
    register("fake", TinyField, description="a TinyField under another name")
