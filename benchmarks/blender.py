"""Train configurations on a Blender scene under wall-clock budgets; JSON + Markdown table.

Not part of ``make test``. One training process at a time (two cores). Plain NeRF (the
``plain`` field with hierarchical sampling) is the baseline of every run.

    python benchmarks/blender.py --budgets 60 120 --configs nerf ngp voxel
    python benchmarks/blender.py --budgets 300 --views 5 --configs mip fourier siren nerfae \
        volsdf volsdf+mip volsdf+fourier nerfae+fourier nerfae+mip siren+volsdf volsdf+ngp
    python benchmarks/blender.py --budgets 300 --scales 4 --baseline-budgets \
        --configs ngp ngp+mip voxel voxel+mip   # Mip-NeRF's multiscale protocol, 4 scales
    python benchmarks/blender.py --budgets 300 --views 5 --baseline-budgets \
        --configs ngp voxel mip ngp+mip voxel+mip fourier siren siren+ngp nerfae nerfae+ngp \
        volsdf volsdf+ngp volsdf_grid volsdf_hash   # each extension alone and on the fast fields

``fourier`` has no fast-field row: it is a position encoding, and the grid fields bring
their own (the run stops with a clash naming both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"

CONFIGS: dict[str, dict] = {
    "nerf": {
        "plugins": [],
        "set": ["field=plain", "sampler=hierarchical", "train.lr=5e-4", "train.lr_final=5e-5",
                "train.batch_rays=1024"],
    },
    "tiny": {"plugins": [], "set": ["field=tiny", "sampler.samples=64"]},
    "tiny-occupancy": {
        "plugins": [],
        "set": ["field=tiny", "sampler=occupancy", "train.target_samples=262144"],
    },
    "ngp": {"plugins": ["ngp"], "set": []},
    "voxel": {"plugins": ["voxel"], "set": []},
}  # fmt: skip
# The seed's extensions (issue 4): each plugin alone with its defaults, and the pairs that
# must train together; "+ngp" pairs feed ngp's hash encoding to the other plugin's field.
EXTENSIONS = {
    "mip": ["mip"], "fourier": ["fourier"], "siren": ["siren"], "nerfae": ["nerfae"],
    "volsdf": ["volsdf"], "volsdf+mip": ["volsdf", "mip"], "volsdf+fourier": ["volsdf", "fourier"],
    "nerfae+fourier": ["nerfae", "fourier"], "nerfae+mip": ["nerfae", "mip"],
    "siren+volsdf": ["siren", "volsdf"],
}  # fmt: skip
CONFIGS.update({name: {"plugins": plugins, "set": []} for name, plugins in EXTENSIONS.items()})
CONFIGS["volsdf_grid"] = {"plugins": ["volsdf"], "set": ["field=volsdf_grid"]}  # CPU-fast SDF
CONFIGS["volsdf_hash"] = {"plugins": ["volsdf", "ngp"], "set": ["field=volsdf_hash"]}
# anti-aliased grid fields (Zip-NeRF's multisamples and level weights, issue 18)
CONFIGS["ngp+mip"] = {"plugins": ["ngp", "mip"], "set": []}
CONFIGS["ngp+mip6"] = {"plugins": ["ngp", "mip"], "set": ["mip.multisamples=6"]}
CONFIGS["voxel+mip"] = {"plugins": ["voxel", "mip"], "set": []}  # 6 points by default
for field in ("volsdf", "nerfae", "siren"):
    CONFIGS[f"{field}+ngp"] = {
        "plugins": [field, "ngp"],
        "set": [f"field={field}", "encoding=hash"],
    }
# Issue 18, item 7: each extension on its MLP field, on the hash grid (ngp) and on the dense
# voxel grid; None ("—" in the table) where there is no such configuration: the grid fields
# bring their own position encoding, so fourier's and siren's clash with them at start-up,
# and nerfae's field replaces the grid's
FAST_COLUMNS = ("MLP field", "hash grid (ngp)", "voxel grid")
BY_EXTENSION = {
    "mip": ("mip", "ngp+mip", "voxel+mip"),
    "fourier": ("fourier", None, None),
    "siren": ("siren", "siren+ngp", None),
    "nerfae": ("nerfae", "nerfae+ngp", None),
    "volsdf": ("volsdf", "volsdf_hash", "volsdf_grid"),
    "volsdf (MLP on the hash encoding)": (None, "volsdf+ngp", None),
    "none (the field alone)": ("nerf", "ngp", "voxel"),
}


def installed_plugins() -> set[str]:
    """Names of installed atlas plugins."""
    return {ep.name for ep in entry_points(group="atlas")}


def run_one(name: str, budget: float, data: Path, views: int, out: Path, scales: int = 1) -> dict:
    """Train one configuration for one budget in a child process; its metrics + memory.

    ``scales`` > 1 trains and scores on that many scales (``train.scales``)."""
    spec = CONFIGS[name]
    args = [
        str(Path(sys.executable).with_name("atlas")), "run", "--data", str(data),
        "--out", str(out), "--time-budget", str(budget), "--max-steps", "1000000",
        "--eval-views", str(views), "--set", "eval.video_frames=0",
        "--set", f"train.scales={scales}",
    ]  # fmt: skip
    if spec["plugins"]:
        args += ["--plugins", ",".join(spec["plugins"])]
    for pair in spec["set"]:
        args += ["--set", pair]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    with open(out.with_suffix(".log"), "w") as log:
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"config": name, "budget": budget, "error": f"exit {status}, see {out}.log"}
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "config": name,
        "budget": budget,
        "steps": metrics["steps"],
        "rays_per_second": metrics["rays_per_second"],
        "psnr": metrics["test"]["psnr"],
        "ssim": metrics["test"]["ssim"],
        "views": metrics["test"]["views"],
        "peak_memory_mb": usage.ru_maxrss / 1024,
        "seconds_per_view": metrics["test"]["seconds_per_view"],
        "wall_seconds": time.perf_counter() - start,
        "resolution": metrics["protocol"]["resolution"],
        **({"scales": metrics["test"]["scales"],
            "multiscale_psnr": metrics["test"]["multiscale_psnr"]}
           if "scales" in metrics["test"] else {}),
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    """The results as a Markdown table (per-scale PSNR columns for multiscale rows)."""
    scaled = [r for r in rows if "scales" in r]
    if scaled:
        return multiscale_markdown(rows, list(scaled[0]["scales"]))
    lines = [
        "| config | budget (s) | steps | rays/s | test PSNR | SSIM | views | peak MB | s/view |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['budget']:.0f} | {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {r['config']} | {r['budget']:.0f} | {r['steps']} | {r['rays_per_second']:.0f} "
            f"| {r['psnr']:.2f} | {r['ssim']:.3f} | {r['views']} | {r['peak_memory_mb']:.0f} "
            f"| {r['seconds_per_view']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def extension_markdown(rows: list[dict]) -> str:
    """PSNR (steps) of each extension per field kind, from single-scale rows; "" if none."""
    found = {r["config"]: r for r in rows if "error" not in r and "scales" not in r}
    lines = [
        "| extension | " + " | ".join(FAST_COLUMNS) + " |",
        "| --- |" + " --- |" * len(FAST_COLUMNS),
    ]
    for extension, names in BY_EXTENSION.items():
        if not any(name in found for name in names):
            continue
        cells = []
        for name in names:
            row = found.get(name)
            if name is None:
                cells.append("—")
            elif row is None:
                cells.append("not run")
            else:
                cells.append(f"{row['psnr']:.2f} dB ({row['steps']} steps, `{name}`)")
        lines.append(f"| {extension} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def multiscale_markdown(rows: list[dict], factors: list[str]) -> str:
    """Multiscale rows: PSNR at each scale and their mean (Mip-NeRF's table)."""
    heads = " | ".join(f"PSNR 1/{f}" for f in factors)
    lines = [
        f"| config | budget (s) | steps | {heads} | mean PSNR | s/view (full) |",
        "| --- | --- | --- |" + " --- |" * len(factors) + " --- | --- |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['budget']:.0f} | {r['error']} |")
            continue
        cells = " | ".join(f"{r['scales'][f]['psnr']:.2f}" for f in factors)
        lines.append(
            f"| {r['config']} | {r['budget']:.0f} | {r['steps']} | {cells} "
            f"| {r['multiscale_psnr']:.2f} | {r['seconds_per_view']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark grid and write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=LEGO)
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 120, 300, 600])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--views", type=int, default=25, help="test views (evenly spaced)")
    parser.add_argument(
        "--baseline-views",
        type=int,
        default=0,
        help="test views for the plain-NeRF baseline (0: as --views); its 8x256 MLP takes "
        "about a minute per 200x200 view on two cores",
    )
    parser.add_argument(
        "--baseline-budgets",
        type=float,
        nargs="*",
        default=None,
        help="budgets for the baseline (default: all of --budgets)",
    )
    parser.add_argument(
        "--scales", type=int, default=1,
        help="train and score at this many scales (1, 1/2, ...; Mip-NeRF's multiscale protocol)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-blender")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such scene folder")
    available = installed_plugins()
    configs = [c for c in args.configs if set(CONFIGS[c]["plugins"]) <= available]
    skipped = sorted(set(args.configs) - set(configs))
    if skipped:
        print(f"skipping (plugins not installed): {', '.join(skipped)}")
    if "nerf" not in configs:
        configs.insert(0, "nerf")  # the baseline is always in the same run
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = args.out / stamp
    folder.mkdir(parents=True)
    rows = []
    baseline_budgets = args.budgets if args.baseline_budgets is None else args.baseline_budgets
    for budget in args.budgets:
        for name in configs:
            views = args.views
            if name == "nerf":
                if budget not in baseline_budgets:
                    continue
                views = args.baseline_views or args.views
            out = folder / f"{name}-{budget:.0f}"
            row = run_one(name, budget, args.data, views, out, args.scales)
            rows.append(row)
            print(markdown([row]).splitlines()[-1], flush=True)
    (folder / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    for budget in args.budgets:
        grouped = extension_markdown([r for r in rows if r["budget"] == budget])
        if grouped:
            table += f"\nBy extension, test PSNR after {budget:.0f} s:\n\n{grouped}"
    (folder / "results.md").write_text(table)
    print(f"\n{table}\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
