"""``atlas data process INPUT --out SCENE``: the command's report around the pipeline."""

from __future__ import annotations

import argparse

from atlas_core.data.process import process
from atlas_core.failures import debugging

__all__ = ["cmd_process"]


def cmd_process(args: argparse.Namespace) -> int:
    """Process photos or a video into a scene and say what was registered; ``--debug``
    shows COLMAP's own log too."""
    summary = process(
        args.input,
        args.out,
        frames=args.frames,
        matcher=args.matcher,
        camera_model=args.camera_model,
        overwrite=args.overwrite,
        verbose=debugging(args),
        threads=args.threads,
    )
    count = len(summary.registered)
    print(f"registered {count} of {summary.total} images ({summary.matcher} matching)")
    if summary.unregistered:
        print(f"not registered: {', '.join(summary.unregistered)}")
    cam = summary.camera
    print(
        f"camera {cam.model} {cam.width}x{cam.height}: fx {cam.fx:.1f} fy {cam.fy:.1f} "
        f"cx {cam.cx:.1f} cy {cam.cy:.1f}; {summary.points} sparse points"
    )
    print(f"wrote {summary.out}; train with: atlas run --data {summary.out}")
    return 0
