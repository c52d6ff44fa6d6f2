"""How the CLI reports a bug (not a user error): who is at fault, and the traceback on demand."""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType

__all__ = ["DEBUG_ENV", "DEBUG_HELP", "culprit", "debugging", "report_bug"]

DEBUG_ENV = "ATLAS_DEBUG"
DEBUG_HELP = f"on a plugin's or the core's bug, print the traceback (or {DEBUG_ENV}=1)"


def debugging(args: argparse.Namespace) -> bool:
    """True with ``--debug`` or ``ATLAS_DEBUG`` set to something other than 0/false/no."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return bool(getattr(args, "debug", False)) or env not in ("", "0", "false", "no", "off")


def culprit(error: BaseException) -> str:
    """Where an unexpected error comes from: the innermost frame of a plugin package, else of
    code outside the core and installed libraries (a plugin loaded another way), else the
    core's own."""
    frames = [
        (tb.tb_frame.f_globals.get("__name__", ""), tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        for tb in _tracebacks(error)
    ][::-1]
    library = tuple({sysconfig.get_path("stdlib"), sysconfig.get_path("purelib")})
    for pick in ("plugin", "other", "core"):
        for module, filename, line in frames:
            top, where = module.split(".")[0], f"{Path(filename).name}:{line}"
            if pick == "plugin" and top.startswith("atlas_plugin_"):
                return f"plugin '{top.removeprefix('atlas_plugin_')}' ({where})"
            outside = top != "atlas_core" and not filename.startswith(library)
            if pick == "other" and outside and "site-packages" not in filename:
                return f"{top} ({where})"
            if pick == "core" and top == "atlas_core":
                return f"nerf-atlas ({where})"
    return "nerf-atlas"


def _tracebacks(error: BaseException) -> list[TracebackType]:
    """The traceback entries of ``error``, outermost first."""
    entries, tb = [], error.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    return entries


def report_bug(message: str, error: BaseException, debug: bool) -> int:
    """Print a bug's one-line report (with the traceback first under --debug); exit code 1."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
        print(f"atlas: error: {message}", file=sys.stderr)
    else:
        hint = f"; rerun with --debug (or {DEBUG_ENV}=1) for the traceback"
        print(f"atlas: error: {message}{hint}", file=sys.stderr)
    return 1
