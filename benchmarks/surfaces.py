"""Surfaces and relighting on the realistic generated scenes, next to the papers' figures.

Not part of ``make test``; one training process at a time. Scenes: the realistic DTU-layout
scan (``atlas data synth --kind dtu --size 160``: 160x120, 32 views, every 8th held out)
and the realistic point-light scene (``--kind nerv_point --size 128``: 60 training views
under collocated and moving lights, 8 test views under held-out lights). Each
configuration trains for each budget, exports ``mesh --visible-only`` and measures
Chamfer distance with ``tools/chamfer.py`` (DTU's accuracy and completeness; true points no
camera sees left out) and the test PSNR (for the point-light scene: held-out views under
held-out lights). ``point-relight`` is the README command (the SDF grid, ``relight_volume``);
``point-relight-srgb`` the README command on the point-light scene stored sRGB-encoded,
as Blender and cameras store images (``write_realistic_point(..., encoding="srgb")``);
``point-relight-hash`` the same on ``volsdf_hash`` (ngp's hash encoding); ``dtu-hash`` the
scan on it; ``point-relight-network`` the SDF network traced to its surface (the plugin's
default field).

    python benchmarks/surfaces.py --budgets 300 600
    python benchmarks/surfaces.py --budgets 5 --resolution 64 --configs dtu-grid   # a check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ATLAS = [sys.executable, "-m", "atlas_core.cli"]
CHAMFER = [sys.executable, str(ROOT / "tools" / "chamfer.py")]

SCENES = {"dtu": ("dtu", 160), "point": ("nerv_point", 128), "point-srgb": ("nerv_point", 128)}
# the point-light scene as most renderers store it: sRGB-encoded PNGs (declared in its JSON)
WRITE_SRGB = (
    "import sys; from atlas_plugin_relight.realistic_point import write_realistic_point; "
    "write_realistic_point(sys.argv[1], int(sys.argv[2]), encoding='srgb')"
)
CONFIGS: dict[str, dict] = {
    "dtu-grid": {"scene": "dtu", "plugins": "dtu,volsdf",
                 "set": ["field=volsdf_grid", "losses.mask=0.1"]},
    "dtu-hash": {"scene": "dtu", "plugins": "dtu,volsdf,ngp",
                 "set": ["field=volsdf_hash", "losses.mask=0.1"]},
    "point-relight": {"scene": "point", "plugins": "volsdf,relight", "set": ["field=volsdf_grid"]},
    "point-relight-srgb": {"scene": "point-srgb", "plugins": "volsdf,relight",
                           "set": ["field=volsdf_grid"]},
    "point-relight-hash": {"scene": "point", "plugins": "volsdf,relight,ngp",
                           "set": ["field=volsdf_hash"]},
    "point-relight-network": {"scene": "point", "plugins": "volsdf,relight",
                              "set": ["field=volsdf", "train.lr=1e-3"]},
}  # fmt: skip
PAPERS = {
    "dtu": "Chamfer 0.84-0.90 mm on ~300 mm objects (NeuS, VolSDF, IDR): about 0.3%; "
    "target here: at most 0.5% of the objects' size and at least 28 dB",
    "point": "NeRV: about 25-27 dB on its point-light scenes; target here: at least 26 dB",
    "point-srgb": "NeRV: about 25-27 dB; target here: at least 26 dB",
}


def ensure_scene(out: Path, name: str) -> Path:
    """The generated scene ``name`` under ``out`` (written once)."""
    kind, size = SCENES[name]
    path = out / "scenes" / f"{name}-{size}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "point-srgb":
            subprocess.run([sys.executable, "-c", WRITE_SRGB, str(path), str(size)], check=True)
        else:
            args = ["data", "synth", str(path), "--kind", kind, "--size", str(size)]
            subprocess.run([*ATLAS, *args], check=True)
    return path


def run_one(name: str, budget: float, scene: Path, out: Path, resolution: int) -> dict:
    """Train, export the visible mesh, measure; the row of the table."""
    config = CONFIGS[name]
    kind = SCENES[config["scene"]][0]
    run_dir = out / f"{name}-{int(budget)}s"
    args = [
        "run",
        "--data",
        str(scene),
        "--data-kind",
        kind,
        "--plugins",
        config["plugins"],
        "--time-budget",
        str(budget),
        "--out",
        str(run_dir),
        "--set",
        "eval.video_frames=0",
    ]
    for item in config["set"]:
        args += ["--set", item]
    started = time.time()
    subprocess.run([*ATLAS, *args], check=True)
    wall = time.time() - started
    metrics = json.loads((run_dir / "metrics.json").read_text())
    export = ["export", str(run_dir), "mesh", "--visible-only", "--resolution", str(resolution)]
    done = subprocess.run([*ATLAS, *export], capture_output=True, text=True)
    terms: dict = {"mesh": (done.stdout or done.stderr).strip().splitlines()[-1:]}
    if done.returncode == 0:  # a run stopped before it has a surface has no mesh to measure
        terms_file = run_dir / "chamfer.json"
        measure = [str(run_dir / "mesh.ply"), str(scene), "--kind", kind, "--json", str(terms_file)]
        subprocess.run([*CHAMFER, *measure], check=True, stdout=subprocess.DEVNULL)
        terms.update(json.loads(terms_file.read_text()))
    return {
        "config": name, "budget": budget, "steps": metrics.get("steps"), "wall": wall,
        "psnr": metrics["test"]["psnr"], "supersample": metrics["test"].get("supersample", 1),
        "command": "atlas " + " ".join(args), **terms,
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    """The results table, each figure next to its target."""
    lines = ["| config | budget s | steps | test PSNR | accuracy | completeness | Chamfer "
             "| Chamfer % of size | papers / target |", "|" + " --- |" * 9]  # fmt: skip
    for row in rows:
        scene = CONFIGS[row["config"]]["scene"]
        terms = [row.get(key) for key in ("accuracy", "completeness", "chamfer")]
        shown = [f"{t:.4f}" if t is not None else "no mesh" for t in terms]
        percent, rays = row.get("chamfer_percent"), row.get("supersample", 1)
        psnr = f"{row['psnr']:.2f}" + (f" ({rays}x{rays} rays)" if rays > 1 else "")
        shown.append(f"{percent:.2f}" if percent is not None else "-")
        lines.append(
            f"| {row['config']} | {row['budget']:g} | {row['steps']} | {psnr} "
            f"| {' | '.join(shown)} | {PAPERS[scene]} |"
        )
    lines += ["", "Commands:", ""] + [f"    {row['command']}" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the grid; write results.json and results.md under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[300, 600])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--resolution", type=int, default=512, help="mesh grid nodes per axis")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-surfaces")
    args = parser.parse_args(argv)
    rows = []
    for name in args.configs:
        scene = ensure_scene(args.out, CONFIGS[name]["scene"])
        for budget in args.budgets:
            rows.append(run_one(name, budget, scene, args.out, args.resolution))
            (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
