"""Checkpoints: atomic writes, the last K kept, loaded without running code.

A checkpoint that cannot be read (truncated, corrupt) is skipped with a warning in
favour of the previous one; one written by other plugin versions is refused.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from atlas_core.errors import AtlasError, first_line, warn
from atlas_core.io import atomic_write_bytes

__all__ = [
    "PATTERN",
    "REQUIRED",
    "STALE",
    "VERSION",
    "check_versions",
    "checkpoint_paths",
    "latest_checkpoint",
    "load_checkpoint",
    "load_latest",
    "release",
    "remove_stale",
    "save_checkpoint",
]

PATTERN = re.compile(r"^step-(\d+)\.pt$")
STALE = re.compile(r"^\.step-\d+\.pt\..*\.tmp$")  # left by a writer killed mid-write
REQUIRED = ("step", "model", "optimizer", "rng")
VERSION = re.compile(r"^(\d+)\.(\d+)")


def checkpoint_paths(folder: Path) -> list[Path]:
    """Checkpoints in a folder, oldest step first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_stale(folder: Path) -> None:
    """Delete temporary files that a killed checkpoint writer left behind."""
    if folder.is_dir():
        for path in folder.iterdir():
            if STALE.match(path.name):
                path.unlink(missing_ok=True)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``step-NNNNNNN.pt`` atomically, then delete all but the newest ``keep``."""
    remove_stale(folder)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = folder / f"step-{step:07d}.pt"
    atomic_write_bytes(path, buffer.getvalue())
    for old in checkpoint_paths(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``, so it cannot run code."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AtlasError(
            f"{path}: not a readable checkpoint (damaged, or it holds more than weights, "
            "which is never loaded because that could run code)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        reason = first_line(exc, limit=80)
        raise AtlasError(f"{path}: not a readable checkpoint ({reason})") from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        raise AtlasError(f"{path}: not a readable checkpoint (missing {', '.join(REQUIRED)})")
    return state


def load_latest(folder: Path, device: torch.device | str = "cpu") -> tuple[Path, dict] | None:
    """The newest readable checkpoint and its state; None when there is no checkpoint.

    Unreadable ones are skipped with a warning; if none can be read, an AtlasError.
    """
    paths = checkpoint_paths(folder)
    failures: list[AtlasError] = []
    for path in reversed(paths):
        try:
            state = load_checkpoint(path, device)
        except AtlasError as exc:
            failures.append(exc)
            continue
        for failure in failures:
            warn(f"{failure}; using {path.name} instead")
        return path, state
    if paths:
        raise AtlasError(
            f"none of the {len(paths)} checkpoints in {folder} could be read; newest: {failures[0]}"
        )
    return None


def release(version: str) -> str:
    """The ``major.minor`` part of a version (the whole string when it has none)."""
    match = VERSION.match(version)
    return f"{match.group(1)}.{match.group(2)}" if match else version


def check_versions(path: Path, saved: dict[str, str], running: dict[str, str]) -> None:
    """Refuse a checkpoint written by another plugin set or another major.minor release."""
    if set(saved) != set(running):
        raise AtlasError(
            f"{path}: saved with plugins {sorted(saved)}, but this run has {sorted(running)}"
        )
    for name, old in saved.items():
        new = running[name]
        if release(str(old)) != release(new):
            raise AtlasError(
                f"{path}: written with {name} {old}, but {name} {new} is running "
                f"(major.minor differ); install {name} {release(str(old))}.x or start a new run"
            )


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint, or None."""
    paths = checkpoint_paths(folder)
    return paths[-1] if paths else None
