"""Checkpoints: atomic writes, the last K kept, loaded without running code."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from atlas_core.errors import AtlasError
from atlas_core.io import atomic_write_bytes

PATTERN = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_paths(folder: Path) -> list[Path]:
    """Checkpoints in a folder, oldest step first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``step-NNNNNNN.pt`` atomically, then delete all but the newest ``keep``."""
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
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise AtlasError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint, or None."""
    paths = checkpoint_paths(folder)
    return paths[-1] if paths else None
