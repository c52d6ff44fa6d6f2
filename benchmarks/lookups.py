"""Forward+backward points per second of each encoding, next to memory bandwidth.

Not part of the test run. Grid lookups are bound by memory traffic, not arithmetic, so
each line also gives the bytes a point moves (rows read forward, rows scattered
backward) and the bandwidth that rate implies, against a plain tensor copy on this
machine. Each measurement keeps the best of several tries (other processes may share
the cores).

    python benchmarks/lookups.py --points 262144
    python benchmarks/lookups.py --only hash  # the hash encoding: reference and fused
    python benchmarks/lookups.py --only voxel  # the voxel lookup and the occupancy march
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from atlas_core.engine.optimizers.masked_adam import MaskedAdam
from atlas_core.nerf.encodings import PositionalEncoding
from atlas_core.nerf.grid import corners, interpolate, sample
from atlas_core.nerf.occupancy import OccupancyGrid, OccupancySampler
from atlas_core.nerf.rays import RayBundle


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


def copy_bandwidth(megabytes: int, repeats: int) -> float:
    """GB/s of a large tensor copy (read + write), this machine's practical ceiling."""
    src = torch.ones(megabytes * 2**18)
    dst = torch.empty_like(src)
    seconds = best_seconds(lambda: dst.copy_(src), repeats, 10.0)
    return 2 * src.numel() * 4 / seconds / 1e9


def report(name: str, points: int, seconds: float, bytes_per_point: float, peak: float) -> None:
    """One line: M points/s and the bandwidth it implies."""
    rate = points / seconds
    gbs = rate * bytes_per_point / 1e9
    print(
        f"{name:34s} {rate / 1e6:6.2f} M pts/s  {bytes_per_point:5.0f} B/pt  "
        f"{gbs:5.1f} GB/s ({100 * gbs / peak:3.0f}% of copy)"
    )


def main() -> None:
    """Measure each lookup and print a line per encoding."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2**18)
    parser.add_argument("--resolution", type=int, default=128, help="voxel grid vertices/axis")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--only", choices=("all", "hash", "voxel"), default="all")
    args = parser.parse_args()
    n, res = args.points, args.resolution
    torch.manual_seed(0)
    peak = copy_bandwidth(256, args.repeats)
    print(f"{n} points, {torch.get_num_threads()} threads; tensor copy {peak:.1f} GB/s")
    # points along rays, as in training (neighbours share cells), not uniformly random
    rays = n // 64
    origins = torch.rand(rays, 3) * 2 - 1
    directions = F.normalize(torch.randn(rays, 3), dim=-1) * 0.02
    points = (origins[:, None] + directions[:, None] * torch.arange(64.0)[:, None]).view(-1, 3)
    points = points.clamp(-1, 1)

    if args.only == "hash":
        hash_encodings(points, args, peak)
        return
    if args.only == "voxel":
        voxel_kernels(points, args, peak)
        return

    encoding = PositionalEncoding(3, 10)
    x = points.clone().requires_grad_(True)

    def positional() -> None:
        encoding(x).sum().backward()
        x.grad = None

    out = encoding.out_dim * 4
    report("positional L=10 (compute only)", n, best_seconds(positional, args.repeats,
           args.budget), 2 * out, peak)  # fmt: skip

    low, high = torch.full((3,), -1.0), torch.full((3,), 1.0)
    at = corners(points, low, high, (res, res, res))
    for channels in (1, 12):
        grid = torch.randn(res**3, channels, requires_grad=True)
        for sparse in (False, True):

            def lookup(grid: torch.Tensor = grid, sparse: bool = sparse) -> None:
                interpolate(grid, at, sparse=sparse).sum().backward()
                grid.grad = None

            moved = 8 * channels * 4 * 2 + 8 * (8 + 4)  # rows read + scattered, index
            kind = "sparse" if sparse else "dense"
            name = f"voxel {res}^3 C={channels} ({kind} grad)"
            report(name, n, best_seconds(lookup, args.repeats, args.budget), moved, peak)

    voxel_kernels(points, args, peak)
    hash_encodings(points, args, peak)


def voxel_kernels(points: torch.Tensor, args: argparse.Namespace, peak: float) -> None:
    """The voxel lookup with its corners (``grid.sample``: C++ and reference, sparse
    gradient, then the touched rows summed as masked Adam needs them) and the occupancy
    march (C++ and reference), rays per second."""
    n, res = len(points), args.resolution
    low, high = torch.full((3,), -1.0), torch.full((3,), 1.0)
    shape = (res, res, res)
    for channels in (1, 12):
        grid = torch.randn(res**3, channels, requires_grad=True)
        optimizer = MaskedAdam([grid])
        for kernel in ("torch", "cpp"):

            def lookup(
                grid: torch.Tensor = grid, kernel: str = kernel, adam: MaskedAdam = optimizer
            ) -> None:
                values, _ = sample(grid, points, low, high, shape, sparse=True, kernel=kernel)
                values.sum().backward()
                adam.touched_rows(grid, grid.grad)
                grid.grad = None

            moved = 8 * channels * 4 * 2 + 3 * 4  # rows read and added to, the point
            name = f"voxel {res}^3 C={channels} +rows, {kernel}"
            report(name, n, best_seconds(lookup, args.repeats, args.budget), moved, peak)
    # the march: 4096 rays into a 128^3 grid whose occupied cells form a shell
    grid = OccupancyGrid((-1.0, -1.0, -1.0, 1.0, 1.0, 1.0), 128)
    radius = grid.cell_centres(torch.arange(128**3), jitter=False).norm(dim=-1)
    grid.mask = (radius > 0.5) & (radius < 0.6)
    grid.refresh_derived()
    sampler = OccupancySampler.__new__(OccupancySampler)
    torch.nn.Module.__init__(sampler)
    sampler.grid, sampler.step_size = grid, float(grid.cell_size.norm()) / 3
    count = 4096
    origins = F.normalize(torch.randn(count, 3), dim=-1) * 3
    directions = F.normalize(-origins + 0.3 * torch.randn(count, 3), dim=-1)
    ones = torch.ones(count, 1)
    rays = RayBundle(origins, directions, ones, ones * 5, ones * 1e-3, torch.zeros(count).long())
    for kernel in ("torch", "cpp"):
        sampler.kernel = kernel
        seconds = best_seconds(lambda: sampler.march(rays), args.repeats, args.budget)
        samples = len(sampler.march(rays)[0])
        print(
            f"{'march 128^3 shell, ' + kernel:34s} {count / seconds / 1e6:6.3f} M rays/s  "
            f"({samples / count:.0f} samples/ray, {seconds * 1e3:.1f} ms per 4096 rays)"
        )


def hash_encodings(points: torch.Tensor, args: argparse.Namespace, peak: float) -> None:
    """Instant-NGP's hash encoding (Mueller et al. 2022): reference and fused kernels."""
    try:
        from atlas_plugin_ngp import fused
        from atlas_plugin_ngp.hash_encoding import HashEncoding
    except ImportError:
        print("ngp plugin not installed: skipping the hash encoding")
        return
    n = points.shape[0]
    unit = ((points + 1) / 2).clone()  # table gradient only, as in training
    rates = {}
    kernels = ["torch"] + (["cpp"] if fused.extension() is not None else [])
    for kernel in kernels:
        torch.manual_seed(0)
        hashed = HashEncoding(kernel=kernel)
        levels, feats = hashed.out_dim // 2, 2
        weights = torch.randn(n, hashed.out_dim)  # a gradient that is not all ones

        def hash_lookup(hashed: HashEncoding = hashed, weights: torch.Tensor = weights) -> None:
            (hashed.encode_unit(unit) * weights).sum().backward()
            hashed.zero_grad(set_to_none=True)

        def hash_forward(hashed: HashEncoding = hashed) -> None:
            with torch.no_grad():
                hashed.encode_unit(unit)

        def with_points(hashed: HashEncoding = hashed, weights: torch.Tensor = weights) -> None:
            x = unit.clone().requires_grad_(True)
            (hashed.encode_unit(x) * weights).sum().backward()
            hashed.zero_grad(set_to_none=True)

        moved = levels * 8 * feats * 4 * 2  # per level: 8 corner rows read and scattered
        name = f"hash L={levels} F={feats} T=2^17 ({kernel})"
        seconds = best_seconds(hash_lookup, args.repeats, args.budget)
        report(name, n, seconds, moved, peak)
        rates[kernel] = n / seconds
        forward = best_seconds(hash_forward, args.repeats, args.budget)
        report(f"  forward only ({kernel})", n, forward, moved / 2, peak)
        points_too = best_seconds(with_points, args.repeats, args.budget)
        report(f"  + point gradient ({kernel})", n, points_too, moved, peak)
    if len(rates) == 2:
        print(f"hash: fused / reference = {rates['cpp'] / rates['torch']:.1f}x")


if __name__ == "__main__":
    main()
