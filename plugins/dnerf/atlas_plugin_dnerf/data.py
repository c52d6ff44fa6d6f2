"""The ``dnerf`` data kind: NeRF-synthetic folders whose frames carry a ``time``.

D-NeRF (Pumarola et al. 2021) ships its scenes in the blender layout with one extra
key per frame. The core blender loader reads images and poses; this module adds the
times, normalised to [0, 1] over all splits when they fall outside it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from atlas_core.api import SPLITS, DataError, SceneData, load_blender, read_json, short


def read_times(path: Path) -> list[float]:
    """The ``time`` of every frame in one ``transforms_{split}.json``."""
    times = []
    for index, frame in enumerate(read_json(path)["frames"]):
        if "time" not in frame:
            raise DataError(f"{path}: frame {index}: missing key 'time' (not a D-NeRF scene?)")
        value = frame["time"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{path}: frame {index}: time must be a number, got {short(value)}")
        if not math.isfinite(value):
            raise DataError(f"{path}: frame {index}: time must be finite, got {value!r}")
        times.append(float(value))
    return times


def detect_dnerf(root: Path) -> str | None:
    """Claims a blender folder whose first training frame carries a ``time``."""
    path = root / "transforms_train.json"
    if not path.is_file():
        return None
    try:
        frames = read_json(path).get("frames")
    except DataError:
        return None  # the blender loader reports the broken file
    if isinstance(frames, list) and frames and isinstance(frames[0], dict) and "time" in frames[0]:
        return "found transforms_train.json whose frames carry a 'time'"
    return None


def normalise(times: dict[str, list[float]]) -> dict[str, list[float]]:
    """Map all times to [0, 1] by one affine map when any lies outside [0, 1]."""
    values = [t for split in times.values() for t in split]
    low, high = min(values), max(values)
    if low >= 0.0 and high <= 1.0:
        return times
    span = high - low if high > low else 1.0
    return {split: [(t - low) / span for t in ts] for split, ts in times.items()}


def load_dnerf(
    path: str | Path,
    downscale: int = 1,
    near: float = 2.0,
    far: float = 6.0,
    bound: float = 1.5,
) -> SceneData:
    """Load a D-NeRF scene: the blender loader plus per-view times in ``Views.times``."""
    scene = load_blender(path, downscale=downscale, near=near, far=far, bound=bound)
    root = Path(path)
    times = {s: read_times(root / f"transforms_{s}.json") for s in SPLITS if s in scene.splits}
    for split, values in normalise(times).items():
        scene.splits[split].times = torch.tensor(values, dtype=torch.float32)
    return scene
