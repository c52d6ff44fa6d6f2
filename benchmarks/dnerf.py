"""Dynamic scenes: each variant on D-NeRF lego and on a generated large-motion scene
under wall-clock budgets.

Not part of ``make test``. One training process at a time (two cores). Every deformation
variant wraps the ``voxel`` canonical field (the fast CPU path, with the occupancy
sampler it chooses); ``static`` (the same field on the same images, times ignored) is
the baseline. The ``*-ngp`` variants wrap the hash-grid field instead. ``kplanes`` is the
space-time field with no deformation; ``planes-large`` and ``mlp-large`` are the
deformation variants for large motion (coarse-to-fine, time-aware occupancy). Scenes:
``lego`` (D-NeRF lego, 200x200) and ``motion`` (the ``dnerf_motion`` generated scene,
written at ``--motion-size`` px under the output folder when missing). Protocol: white
background, each scene's own test split (20 views). Rows of the motion scene add PSNR over
the moving objects' pixels and over the rest (``dnerf_movers.py``); ``results.json`` is
rewritten after every row.

    python benchmarks/dnerf.py --budgets 300 1200 --scenes lego motion
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import blender  # noqa: E402  (its run_one, markdown and installed_plugins are reused)
import dnerf_movers  # noqa: E402

ROOT = blender.ROOT
DNERF_LEGO = ROOT.parent / "shared" / "data" / "dnerf" / "lego"
MOTION_SEED = 0

DYNAMIC = ["data.kind=dnerf", "dnerf.maps=3"]
SPLINE = ["dnerf.deformation=spline", "losses.rigidity=1e-3", "losses.spline_length=1e-4"]
NGP = ["sampler=occupancy", "sampler.resolution=64", "train.target_samples=131072",
       "train.lr=1e-2", "train.lr_final=1e-3"]  # fmt: skip

KPLANES = ["field=kplanes"]  # the plugin turns K-Planes' regularisers on with it
LARGE = ["dnerf.occupancy_times=4"]  # time-aware occupancy (diagnosis: movers' cells lost)

CONFIGS: dict[str, dict] = {
    "static": {"plugins": ["voxel"], "set": []},
    "planes": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, "dnerf.deformation=planes"]},
    "mlp": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, "dnerf.deformation=mlp"]},
    "spline": {"plugins": ["dnerf", "voxel"], "set": [*DYNAMIC, *SPLINE]},
    "planes-ngp": {"plugins": ["dnerf", "ngp"],
                   "set": [*DYNAMIC, *NGP, "dnerf.deformation=planes"]},
    "spline-ngp": {"plugins": ["dnerf", "ngp"], "set": [*DYNAMIC, *NGP, *SPLINE]},
    "kplanes": {"plugins": ["dnerf"], "set": [*DYNAMIC, *KPLANES]},
    "planes-large": {"plugins": ["dnerf", "voxel"],
                     "set": [*DYNAMIC, "dnerf.deformation=planes", *LARGE,
                             "dnerf.anneal_steps=500", "dnerf.time_resolution=48"]},
    "mlp-large": {"plugins": ["dnerf", "voxel"],
                  "set": [*DYNAMIC, "dnerf.deformation=mlp", *LARGE,
                          "dnerf.anneal_steps=1000"]},
}  # fmt: skip
DEFAULT_CONFIGS = ["planes", "mlp", "spline", "kplanes", "planes-large", "mlp-large"]
BASELINE = "static"


def motion_scene(out: Path, size: int) -> Path:
    """The generated large-motion scene at ``size`` px, written once under ``out``."""
    from atlas_plugin_dnerf.motion_scene import write_motion_scene

    path = out / f"scene-dnerf_motion-{size}px-seed{MOTION_SEED}"
    if not (path / "transforms_test.json").is_file():
        write_motion_scene(path, size=size, seed=MOTION_SEED)
    return path


def markdown(rows: list[dict]) -> str:
    """The results as a Markdown table, with PSNR over the movers and the rest (motion scene)."""
    lines = blender.markdown(rows).splitlines()
    lines[0] += " movers | rest |"
    lines[1] += " --- | --- |"
    for i, row in enumerate(rows, start=2):
        split = row.get("split")
        lines[i] += f" {split['movers']:.2f} | {split['rest']:.2f} |" if split else " | |"
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the grid and write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DNERF_LEGO, help="the lego scene")
    parser.add_argument("--scenes", nargs="+", default=["lego", "motion"],
                        choices=["lego", "motion"])  # fmt: skip
    parser.add_argument("--motion-size", type=int, default=200, help="px of the motion scene")
    parser.add_argument("--budgets", type=float, nargs="+", default=[300, 1200])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--views", type=int, default=20, help="test views (evenly spaced)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-dnerf")
    args = parser.parse_args(argv)
    if "lego" in args.scenes and not args.data.is_dir():
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
    scenes = {"lego": args.data}
    if "motion" in args.scenes:
        scenes["motion"] = motion_scene(args.out, args.motion_size)
    rows = []
    for scene in args.scenes:
        for budget in args.budgets:
            for name in configs:
                if (
                    name == BASELINE
                    and budget != min(args.budgets)
                    and BASELINE not in args.configs
                ):
                    continue  # the added baseline runs at the shortest budget only
                out = folder / f"{scene}-{name}-{budget:.0f}"
                row = {
                    "scene": scene,
                    **blender.run_one(name, budget, scenes[scene], args.views, out),
                }
                if scene == "motion" and "error" not in row:
                    row["split"] = dnerf_movers.score(scenes[scene], out)
                rows.append(row)
                (folder / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
                print(f"{scene}: {markdown([row]).splitlines()[-1]}", flush=True)
    tables = "\n".join(f"## {scene}\n\n{markdown([r for r in rows if r['scene'] == scene])}"
                       for scene in args.scenes)  # fmt: skip
    (folder / "results.md").write_text(tables)
    print(f"\n{tables}\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
