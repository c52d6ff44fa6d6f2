"""New times or new views: which of the two costs a run's moving objects their figure.

A run of the generated large-motion scene (``atlas data synth --kind dnerf_motion``) is
scored on two probe sets traced from the scene's own definition: ``newtime``, training
cameras at times halfway between training frames (a camera it has seen, a time it has
not), and ``newview``, the test cameras at the nearest training frame's time (a time it
has fitted, a camera it has not). Each probe is a scene folder in ``RUN/probe-NAME/``
(the training split linked, not copied); its images go to ``RUN/eval-NAME/`` and the
movers' figures are those of ``dnerf_movers.py``. Prints one line a probe.

    python benchmarks/dnerf_probe.py SCENE RUN_DIR [--views 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from atlas_plugin_dnerf.motion_scene import write_frames
from dnerf_movers import score_frames

from atlas_core.engine.setup import load_scene
from atlas_core.engine.trainer import load_trained


def probe_frames(scene: Path, views: int) -> dict[str, list[tuple[np.ndarray, float]]]:
    """Cameras [4, 4] and times of each probe: ``newtime`` and ``newview``."""
    train = json.loads((scene / "transforms_train.json").read_text())["frames"]
    test = json.loads((scene / "transforms_test.json").read_text())["frames"]
    last = len(train) - 1
    pick = np.linspace(0, last - 1, min(views, last)).round().astype(int)
    pose = lambda frame: np.array(frame["transform_matrix"])  # noqa: E731
    return {
        "newtime": [(pose(train[i]), (i + 0.5) / last) for i in pick],
        "newview": [(pose(f), round(f["time"] * last) / last) for f in test[:views]],
    }


def write_probe(scene: Path, out: Path, cameras: list[tuple[np.ndarray, float]]) -> Path:
    """A scene folder at ``out``: the scene's training split and ``cameras`` as its test."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "train").exists():
        (out / "train").symlink_to((scene / "train").resolve())
    (out / "transforms_train.json").write_text((scene / "transforms_train.json").read_text())
    size = iio.imread(next((scene / "train").glob("*.png"))).shape[0]
    write_frames(out, "test", cameras, size)
    return out


def main(argv: list[str] | None = None) -> int:
    """Write both probes, score the run on each, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path, help="the dnerf_motion scene folder")
    parser.add_argument("run", type=Path, help="a trained run of that scene")
    parser.add_argument("--views", type=int, default=20, help="frames per probe")
    args = parser.parse_args(argv)
    trainer = load_trained(args.run, eval_views=args.views)
    for name, frames in probe_frames(args.scene, args.views).items():
        probe = write_probe(args.scene, args.run / f"probe-{name}", frames)
        trainer.config.data.path = str(probe)
        trainer.scene = load_scene(trainer.config, trainer.plugins)
        folder = args.run / f"eval-{name}"
        trainer.score("test", folder)
        meta = json.loads((probe / "transforms_test.json").read_text())["frames"]
        result = score_frames(meta, folder)
        all_, movers, rest = (result[key] for key in ("all", "movers", "rest"))
        print(f"{args.run.name} {name}: all {all_:.2f} dB, movers {movers:.2f}, "
              f"rest {rest:.2f} ({result['views']} views)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
