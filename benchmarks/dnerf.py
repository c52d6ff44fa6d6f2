"""Dynamic scenes: each deformation variant on D-NeRF lego under wall-clock budgets.

Not part of ``make test``. One training process at a time (two cores). Every variant
wraps the ``voxel`` canonical field (the fast CPU path, with the occupancy sampler it
chooses) in a deformation; ``static`` (the same field on the same images, times
ignored) is the baseline. The ``*-ngp`` variants wrap the hash-grid field instead.
Protocol: 200x200 images, white background, the scene's own test split (20 views).

    python benchmarks/dnerf.py --budgets 300 1200 --configs planes mlp spline
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import blender  # noqa: E402  (its run_one, markdown and installed_plugins are reused)

ROOT = blender.ROOT
DNERF_LEGO = ROOT.parent / "shared" / "data" / "dnerf" / "lego"

DYNAMIC = ["data.kind=dnerf", "dnerf.maps=3"]
SPLINE = ["dnerf.deformation=spline", "losses.rigidity=1e-3", "losses.spline_length=1e-4"]
NGP = ["sampler=occupancy", "sampler.resolution=64", "train.target_samples=131072",
       "train.lr=1e-2", "train.lr_final=1e-3"]  # fmt: skip

CONFIGS: dict[str, dict] = {
    "static": {"plugins": ["voxel"], "set": []},
    "planes": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, "dnerf.deformation=planes"]},
    "mlp": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, "dnerf.deformation=mlp"]},
    "spline": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, *SPLINE]},
    "planes-ngp": {"plugins": ["dnerf", "ngp"],
                   "set": [*DYNAMIC, *NGP, "dnerf.deformation=planes"]},
    "spline-ngp": {"plugins": ["dnerf", "ngp"], "set": [*DYNAMIC, *NGP, *SPLINE]},
}  # fmt: skip
BASELINE = "static"


def main(argv: list[str] | None = None) -> int:
    """Run the grid and write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DNERF_LEGO)
    parser.add_argument("--budgets", type=float, nargs="+", default=[300, 1200])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--views", type=int, default=20, help="test views (evenly spaced)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-dnerf")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such scene folder")
    blender.CONFIGS.update(CONFIGS)  # run_one looks configurations up there
    available = blender.installed_plugins()
    configs = [c for c in args.configs if set(CONFIGS[c]["plugins"]) <= available]
    skipped = sorted(set(args.configs) - set(configs))
    if skipped:
        print(f"skipping (plugins not installed): {', '.join(skipped)}")
    if BASELINE not in configs and set(CONFIGS[BASELINE]["plugins"]) <= available:
        configs.insert(0, BASELINE)
    folder = args.out / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    rows = []
    for budget in args.budgets:
        for name in configs:
            if name == BASELINE and budget != min(args.budgets) and BASELINE not in args.configs:
                continue  # the added baseline runs at the shortest budget only
            out = folder / f"{name}-{budget:.0f}"
            row = blender.run_one(name, budget, args.data, args.views, out)
            rows.append(row)
            print(blender.markdown([row]).splitlines()[-1], flush=True)
    (folder / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (folder / "results.md").write_text(blender.markdown(rows))
    print(f"\n{blender.markdown(rows)}\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
