"""Test PSNR of a run on the generated large-motion scene, split into the moving objects'
pixels and the rest.

The movers' pixels of a test view are those where the full scene's render differs from a
render of the static objects alone (the scene is re-traced from its own definition, so
only the ``dnerf_motion`` scene written by ``atlas data synth`` can be scored). Reads the
run's ``test/*_pred.png`` and ``*_gt.png`` (with ``--split train``, the training views
that ``atlas eval RUN --split train`` wrote to ``eval-train/``); prints one line.

    python benchmarks/dnerf_movers.py SCENE RUN_DIR [--split train]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from atlas_plugin_dnerf.motion_scene import STATIC, shapes_at

from atlas_core.api import synth


def mover_mask(frame: dict, size: int) -> np.ndarray:
    """Pixels [size, size] of a test frame where the moving objects change the image."""
    c2w = np.array(frame["transform_matrix"])
    dirs = synth.ray_directions(c2w, size).reshape(-1, 3)
    full = synth.trace_rgba(c2w[:3, 3], dirs, shapes_at(frame["time"]))
    still = synth.trace_rgba(c2w[:3, 3], dirs, STATIC)
    return (np.abs(full - still).max(-1) > 1e-3).reshape(size, size)


def psnr(error: np.ndarray) -> float:
    """PSNR of a mean squared error (images in [0, 1])."""
    return float(-10.0 * np.log10(max(error.mean(), 1e-12)))


def images_folder(run: Path, split: str) -> Path:
    """Where a run's scored images of ``split`` lie: ``test/`` or ``eval-<split>/``."""
    return run / ("test" if split == "test" else f"eval-{split}")


def score(scene: Path, run: Path, split: str = "test") -> dict[str, float] | None:
    """Mean PSNR over all, movers' and other pixels of a run's evaluated views of ``split``
    (None: no views)."""
    frames = json.loads((scene / f"transforms_{split}.json").read_text())["frames"]
    return score_frames(frames, images_folder(run, split))


def score_frames(frames: list[dict], folder: Path) -> dict[str, float] | None:
    """``score`` of the ``*_pred.png`` images in ``folder`` of these ``frames``."""
    by_name = {Path(frame["file_path"]).name: frame for frame in frames}
    rows = []
    for pred_path in sorted(folder.glob("*_pred.png")):
        name = pred_path.name.removesuffix("_pred.png")  # r_007_pred.png: frame r_007
        pred = iio.imread(pred_path)[..., :3] / 255.0
        truth = iio.imread(pred_path.with_name(pred_path.name.replace("_pred", "_gt")))
        error = ((pred - truth[..., :3] / 255.0) ** 2).mean(-1)
        mask = mover_mask(by_name[name], error.shape[0])
        rows.append((psnr(error), psnr(error[mask]), psnr(error[~mask]), mask.mean()))
    if not rows:
        return None
    mean = np.mean(rows, axis=0)
    return {"all": mean[0], "movers": mean[1], "rest": mean[2], "share": mean[3],
            "views": len(rows)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Score every evaluated test view of the run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path, help="the dnerf_motion scene folder")
    parser.add_argument("run", type=Path, help="a run folder with test/*_pred.png")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="train: the views `atlas eval RUN --split train` wrote")  # fmt: skip
    args = parser.parse_args(argv)
    result = score(args.scene, args.run, args.split)
    if result is None:
        print(f"{images_folder(args.run, args.split)}: no *_pred.png images", file=sys.stderr)
        return 2
    print(f"{args.run.name}: all {result['all']:.2f} dB, movers {result['movers']:.2f}, "
          f"rest {result['rest']:.2f} (movers cover {result['share']:.1%} of the pixels; "
          f"{result['views']} views)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
