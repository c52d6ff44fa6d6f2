"""Errors the CLI reports as one line (exit code 2, or 130 for an interrupt), and warnings."""

from __future__ import annotations

import sys


class AtlasError(Exception):
    """A user-facing error: bad input, config or plugin; printed as one line."""


class ConfigError(AtlasError):
    """A config key or value that is unknown or invalid."""


class DataError(AtlasError):
    """A dataset file that is missing or malformed."""


class PluginError(AtlasError):
    """A plugin that is missing, broken, or clashes with another."""


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
