"""NeRF Atlas core: hook specs, plugin loading and the plain NeRF pipeline."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("atlas")
"""Decorator that marks a plugin function as an implementation of an atlas hook."""
