"""Errors the CLI reports as one line with exit code 2."""

from __future__ import annotations


class AtlasError(Exception):
    """A user-facing error: bad input, config or plugin; printed as one line."""


class ConfigError(AtlasError):
    """A config key or value that is unknown or invalid."""


class DataError(AtlasError):
    """A dataset file that is missing or malformed."""


class PluginError(AtlasError):
    """A plugin that is missing, broken, or clashes with another."""
