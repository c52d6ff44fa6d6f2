"""Forward+backward points per second: grid lookups (ours vs grid_sample) and VoxelField.

Not part of the test run. Each measurement repeats and keeps the best time, since other
processes may share the cores.

    python plugins/voxel/benchmarks/bench_voxel.py --points 262144 --resolution 128
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from atlas_plugin_voxel.field import VoxelField
from atlas_plugin_voxel.grid import trilinear

from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.pipeline import BuildContext
from atlas_core.rays import RayBundle, RaySamples


def best_seconds(run: Callable[[], None], repeats: int, budget: float) -> float:
    """Best wall time of ``run`` over ``repeats`` tries (fewer if ``budget`` s run out)."""
    run()  # warm-up
    times: list[float] = []
    spent = time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        if time.perf_counter() - spent > budget:
            break
    return min(times)


def grid_sample_lookup(grid: torch.Tensor, points: torch.Tensor, low: torch.Tensor,
                       high: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The same lookup with ``grid_sample`` (5-D, align_corners=True), for comparison."""
    unit = (points - low) / (high - low) * 2 - 1
    out = F.grid_sample(grid[None], unit.flip(-1).view(1, 1, 1, -1, 3), align_corners=True)
    return out.view(grid.shape[0], -1).t()


def ray_samples(count: int, device: torch.device) -> RaySamples:
    """``count`` samples on rays through the scene box (64 per ray), as in training."""
    rays = max(count // 64, 1)
    origins = torch.nn.functional.normalize(torch.randn(rays, 3, device=device), dim=-1) * 4
    target = torch.rand(rays, 3, device=device) - 0.5
    directions = torch.nn.functional.normalize(target - origins, dim=-1)
    ones = torch.ones(rays, 1, device=device)
    bundle = RayBundle(origins, directions, ones * 2.5, ones * 5.5, ones * 1e-3,
                       torch.zeros(rays, dtype=torch.long, device=device))  # fmt: skip
    edges = torch.linspace(2.5, 5.5, 65, device=device)
    starts = edges[:-1].repeat(rays)[:, None]
    ends = edges[1:].repeat(rays)[:, None]
    indices = torch.arange(rays, device=device).repeat_interleave(64)
    return RaySamples(bundle, starts, ends, indices)


def main() -> None:
    """Print points per second for each lookup and the field."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2**18)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 12])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=40.0, help="seconds per measurement")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    low = torch.full((3,), -1.5, device=device)
    high = torch.full((3,), 1.5, device=device)
    points = torch.rand(args.points, 3, device=device) * 3 - 1.5
    res = args.resolution
    print(f"{args.points} points, {res}^3 grid, {torch.get_num_threads()} threads, {device}")
    for channels in args.channels:
        grid = torch.randn(channels, res, res, res, device=device, requires_grad=True)
        for name, lookup in (("ours", trilinear), ("grid_sample", grid_sample_lookup)):

            def step(lookup: Callable = lookup, grid: torch.Tensor = grid) -> None:
                lookup(grid, points, low, high).sum().backward()
                grid.grad = None
                sync()

            seconds = best_seconds(step, args.repeats, args.budget)
            print(f"lookup {name:12s} C={channels:2d}: {args.points / seconds / 1e6:6.2f} M pts/s")
    bounds = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    context = BuildContext(RunConfig(), None, SceneData({}, bounds=bounds))
    samples = ray_samples(args.points, device)
    for color in ("mlp", "sh"):
        field = VoxelField(context, resolution=res, initial_resolution=res, upscale_steps=(),
                           color=color).to(device)  # fmt: skip
        with torch.no_grad():
            for grid in (field.density_grid, field.feature_grid):
                grid.normal_()

        def step(field: VoxelField = field) -> None:
            out = field(samples)
            (out["density"].sum() + out["rgb"].sum()).backward()
            field.zero_grad(set_to_none=True)
            sync()

        seconds = best_seconds(step, args.repeats, args.budget)
        print(f"VoxelField color={color}: {len(samples.t_starts) / seconds / 1e6:6.2f} M pts/s")


if __name__ == "__main__":
    main()
