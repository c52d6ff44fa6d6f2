"""NeRF Atlas core: hook specs, plugin loading and the plain NeRF pipeline.

Plugins import from ``atlas_core.api`` (and ``atlas_core.testing`` in their tests);
``hookimpl`` is also here, as in pluggy-based projects.
"""

import pluggy

from atlas_core import _compat

__all__ = ["__version__", "hookimpl"]

__version__ = "1.0.0"

hookimpl = pluggy.HookimplMarker("atlas")
"""Decorator that marks a plugin function as an implementation of an atlas hook."""

_compat.install()
