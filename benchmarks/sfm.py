"""``atlas data process`` on real captures with known cameras; a Markdown table.

Not part of ``make test``. templeRing (Middlebury: 47 photos, calibrated cameras in
templeR_par.txt, ``x = K (R X + t)`` so the centre is ``-R^T t``) and LLFF flower (its 34
photos in images_8, against the poses in poses_bounds.npy). Camera centres are compared
after the best similarity (Umeyama); errors are in % of the true centres' largest
distance apart (the ring's diameter for templeRing, the capture's spread for flower).

    python benchmarks/sfm.py [--data /work/shared/data/real] [--only templering flower]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from atlas_core.data.process import process
from atlas_core.data.process.align import align_error

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real"


def templering_centres(root: Path) -> dict[str, np.ndarray]:
    """Name -> true camera centre, from templeR_par.txt."""
    centres = {}
    lines = (root / "templeR_par.txt").read_text().split("\n")[1:]
    for line in lines:
        parts = line.split()
        if len(parts) != 22:
            continue
        values = np.array(parts[1:], dtype=np.float64)
        rotation, shift = values[9:18].reshape(3, 3), values[18:21]
        centres[parts[0]] = -rotation.T @ shift
    return centres


def flower_centres(root: Path) -> dict[str, np.ndarray]:
    """Name -> camera centre from poses_bounds.npy (rows follow the sorted image names)."""
    poses = np.load(root / "poses_bounds.npy")[:, :15].reshape(-1, 3, 5)
    names = sorted(p.name for p in (root / "images_8").iterdir())
    return {name: pose[:, 3] for name, pose in zip(names, poses, strict=True)}


def found_centres(scene: Path) -> dict[str, np.ndarray]:
    """Name -> recovered camera centre from a processed scene's transforms.json."""
    meta = json.loads((scene / "transforms.json").read_text())
    return {
        Path(f["file_path"]).name: np.array(f["transform_matrix"])[:3, 3] for f in meta["frames"]
    }


def spread(points: np.ndarray) -> float:
    """Largest distance between two points."""
    return float(np.linalg.norm(points[:, None] - points[None], axis=-1).max())


def measure(name: str, images: Path, truth: dict[str, np.ndarray], work: Path) -> dict:
    """Process ``images`` and compare the registered cameras with ``truth``."""
    start = time.perf_counter()
    summary = process(images, work / name, say=lambda text: print(text, file=sys.stderr))
    seconds = time.perf_counter() - start
    found = found_centres(work / name)
    names = sorted(found)
    x = np.array([found[n] for n in names])
    y = np.array([truth[n] for n in names])
    errors = align_error(x, y) / spread(np.array(list(truth.values()))) * 100
    sfm_seconds = sum(v for k, v in summary.seconds.items() if k != "writing")
    return {
        "scene": name,
        "registered": f"{len(summary.registered)} / {summary.total}",
        "missing": ", ".join(summary.unregistered) or "-",
        "sfm_s": sfm_seconds,
        "total_s": seconds,
        "mean_err": float(errors.mean()),
        "max_err": float(errors.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the real captures")
    parser.add_argument("--only", nargs="+", default=["templering", "flower"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "templering" in args.only:
            root = args.data / "templering"
            rows.append(measure("templering", root, templering_centres(root), work))
        if "flower" in args.only:
            root = args.data / "flower"
            rows.append(measure("flower", root / "images_8", flower_centres(root), work))
    print("| scene | registered | not registered | SfM s | centre error mean / max (% of spread) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scene']} | {r['registered']} | {r['missing']} | {r['sfm_s']:.1f} | "
            f"{r['mean_err']:.2f} / {r['max_err']:.2f} |"
        )


if __name__ == "__main__":
    main()
