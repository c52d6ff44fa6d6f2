"""A minimal NeRF Atlas plugin: registers the ``template_scaled`` encoding.

Copy ``plugins/_template`` to start a plugin (see its README). This one configures no
slot: ``--plugins template`` only makes its encoding available to
``--set encoding=template_scaled``.
"""

from __future__ import annotations

from atlas_core.api import Register, hookimpl
from atlas_plugin_template.encoding import ScaledEncoding

__all__ = ["ScaledEncoding"]


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """The scaled-coordinates encoding."""
    register("template_scaled", ScaledEncoding, description="coordinates times encoding.scale")
