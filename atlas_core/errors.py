"""Errors the CLI reports, and warnings.

A user error (``AtlasError`` and its kinds: bad input, config, plugin choice) is one line
with exit code 2; a plugin's own bug (``PluginFailure``: any other exception raised in one
of its hooks) names the plugin and hook and exits 1, with the traceback under ``--debug``;
an interrupt exits 130.
"""

from __future__ import annotations

import sys

__all__ = [
    "AtlasError",
    "ConfigError",
    "DataError",
    "Interrupted",
    "PluginError",
    "PluginFailure",
    "first_line",
    "warn",
]


class AtlasError(Exception):
    """A user-facing error: bad input, config or plugin; printed as one line."""


class ConfigError(AtlasError):
    """A config key or value that is unknown or invalid."""


class DataError(AtlasError):
    """A dataset file that is missing or malformed."""


class PluginError(AtlasError):
    """A plugin that is missing, broken, or clashes with another."""


class PluginFailure(Exception):
    """A plugin's hook raised something other than an AtlasError: a bug in the plugin.

    ``__cause__`` holds the original exception (and its traceback).
    """

    def __init__(self, plugin: str, hook: str, error: BaseException):
        super().__init__(f"plugin '{plugin}' failed in {hook}: {first_line(error)}")
        self.plugin, self.hook, self.error = plugin, hook, error


class Interrupted(Exception):
    """Training stopped by Ctrl-C (SIGINT); the message says how to resume."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as ``Type: message`` on one line (lines joined, cut to ``limit``)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    print(f"atlas: warning: {message}", file=sys.stderr, flush=True)
