"""Test PSNR of a run on the realistic generated point-light scene, per object.

Each test pixel goes to the object its ray first hits (traced from the scene's own
definition, ``atlas_core.data.realistic``: -1 background, 0 the plate, then the objects in
``OBJECTS`` order), so only the scene ``atlas data synth --kind nerv_point --size 128``
(or more) writes can be scored. Reads ``test/r_K_pred.png``; prints one line per object.

    python benchmarks/relight_objects.py SCENE RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from atlas_core.api import focal_from_fov, pixel_rays, realistic

NAMES = {-1: "background", 0: "plate", 1: "marble sphere", 2: "red sphere", 3: "box",
         4: "pole", 5: "pole's ball"}  # fmt: skip


def first_hits(frame: dict, size: int, angle: float) -> np.ndarray:
    """The object index [size * size] each pixel's ray hits first (-1: none)."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pose = torch.tensor(frame["transform_matrix"]).float()
    focal = focal_from_fov(size, angle)
    origins, dirs, _ = pixel_rays(pose, cols.reshape(-1), rows.reshape(-1), focal, size, size)
    origins = np.broadcast_to(origins.double().numpy(), dirs.shape).reshape(-1, 3)
    t, index = realistic.first_hit(origins, dirs.double().numpy())
    return np.where(np.isfinite(t), index, -1)


def score(scene: Path, run: Path) -> dict[int, tuple[float, float]]:
    """Per object: (PSNR over its pixels, share of the images' squared error)."""
    meta = json.loads((scene / "transforms_test.json").read_text())
    sums: dict[int, list[float]] = {}
    for k, frame in enumerate(meta["frames"]):
        truth = iio.imread(scene / "test" / f"r_{k}.png").astype(np.float64) / 255
        pred = iio.imread(run / "test" / f"r_{k}_pred.png")[..., :3].astype(np.float64) / 255
        alpha = truth[..., 3:]
        error = ((pred - (truth[..., :3] * alpha + 1 - alpha)) ** 2).mean(-1).reshape(-1)
        hits = first_hits(frame, truth.shape[0], meta["camera_angle_x"])
        for index in np.unique(hits):
            total = sums.setdefault(int(index), [0.0, 0.0])
            total[0] += float(error[hits == index].sum())
            total[1] += float((hits == index).sum())
    everything = sum(total for total, _ in sums.values())
    return {i: (-10 * np.log10(t / n), t / everything) for i, (t, n) in sorted(sums.items())}


def main() -> int:
    """Print the per-object PSNR of a run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    for index, (psnr, share) in score(args.scene, args.run).items():
        name = NAMES.get(index, f"object {index}")
        print(f"{name}: {psnr:.2f} dB, {100 * share:.0f}% of the squared error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
