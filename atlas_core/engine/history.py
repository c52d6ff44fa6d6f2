"""history.jsonl: a JSON line per logged training step and per evaluation of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atlas_core.io import atomic_write_bytes

__all__ = ["FILE", "append_entry", "read_history", "trim_after"]

FILE = "history.jsonl"


def append_entry(path: Path, entry: dict[str, Any]) -> None:
    """Append one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _entries(path: Path) -> list[dict[str, Any]]:
    """The readable lines; one cut short by a crash is left out."""
    found = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            found.append(entry)
    return found


def trim_after(path: Path, step: int) -> None:
    """Drop lines past ``step`` (a resumed run's lost future) and broken ones."""
    if path.is_file():
        kept = [json.dumps(e) + "\n" for e in _entries(path) if e["step"] <= step]
        atomic_write_bytes(path, "".join(kept).encode())


def read_history(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training lines and evaluation lines (a missing file has none)."""
    entries = _entries(path)
    return [e for e in entries if "eval" not in e], [e for e in entries if "eval" in e]
