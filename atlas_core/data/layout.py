"""Which data kind reads a folder, found from the files in it (``data.kind = "auto"``).

Every registered data kind may give ``register(..., detect=fn)``: ``fn(folder: Path)``
returns a short reason when the kind reads that folder, else None. Plugins' kinds are
asked first (a plugin's kind is the more specific one: ``dnerf`` claims blender folders
whose frames carry a time), then the core's in this order: ``blender``
(``transforms_train.json``), ``nerfstudio`` (``transforms.json``), ``llff``
(``poses_bounds.npy``), ``colmap`` (``sparse/0`` or ``sparse/`` with ``cameras.bin/txt``).
The first claim wins; the reason names the other kinds that claimed the folder too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from atlas_core.data.colmap_model import find_model
from atlas_core.errors import DataError

if TYPE_CHECKING:
    from atlas_core.registry import Registry

__all__ = [
    "AUTO",
    "BUILTIN_DETECTORS",
    "detect_blender",
    "detect_colmap",
    "detect_kind",
    "detect_llff",
    "detect_nerfstudio",
    "is_auto",
]

AUTO = "auto"


def is_auto(kind: str) -> bool:
    """True for ``data.kind`` values that ask for detection (``auto`` or empty)."""
    return kind.strip().lower() in ("", AUTO)


def detect_blender(root: Path) -> str | None:
    """NeRF-synthetic: ``transforms_train.json``."""
    return "found transforms_train.json" if (root / "transforms_train.json").is_file() else None


def detect_nerfstudio(root: Path) -> str | None:
    """nerfstudio / instant-ngp: one ``transforms.json``."""
    return "found transforms.json" if (root / "transforms.json").is_file() else None


def detect_llff(root: Path) -> str | None:
    """LLFF: ``poses_bounds.npy``."""
    return "found poses_bounds.npy" if (root / "poses_bounds.npy").is_file() else None


def detect_colmap(root: Path) -> str | None:
    """COLMAP: a sparse model in ``sparse/0`` or ``sparse``."""
    folder = find_model(root)
    return None if folder is None else f"found a COLMAP model in {folder.relative_to(root)}/"


BUILTIN_DETECTORS: dict[str, Callable[[Path], str | None]] = {
    "blender": detect_blender,
    "nerfstudio": detect_nerfstudio,
    "llff": detect_llff,
    "colmap": detect_colmap,
}


def detect_kind(path: str | Path, registry: Registry | None = None) -> tuple[str, str]:
    """The data kind for a folder and why, from the registry's detectors (or the core's
    when ``registry`` is None); a folder no kind claims raises DataError."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a data folder")
    if registry is None:
        ordered = list(BUILTIN_DETECTORS.items())
    else:
        found = [c for c in registry.components("datasets") if c.detect is not None]
        found.sort(key=lambda c: c.plugin == "core")  # stable: plugins first, in load order
        ordered = [(c.name, c.detect) for c in found]
    claims = [(name, why) for name, detect in ordered if (why := detect(root))]
    if not claims:
        looked = "transforms_train.json, transforms.json, poses_bounds.npy, sparse/0"
        hint = (
            " (COLMAP's database.db but no sparse model)" if (root / "database.db").exists() else ""
        )
        raise DataError(
            f"{root}: no known data layout{hint}: looked for {looked}; "
            "pass --data-kind NAME for another kind"
        )
    (kind, why), others = claims[0], claims[1:]
    if others:
        why += "; also " + ", ".join(f"{name} ({reason})" for name, reason in others)
    return kind, why
