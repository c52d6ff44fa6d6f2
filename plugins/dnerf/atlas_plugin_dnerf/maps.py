"""Flow-map and rigidity-map images: per-sample motion composited like colour."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import torch
from torch import Tensor

from atlas_core.api import (
    Pipeline,
    RayBundle,
    SceneData,
    eval_indices,
    image_rays,
    render_weights,
    segment_sum,
    to_uint8,
)


@torch.no_grad()
def render_motion(pipeline: Pipeline, rays: RayBundle, chunk: int) -> dict[str, Tensor]:
    """Per-ray displacement ``flow`` [R, 3] and, for the spline, ``rigidity`` [R, 1]:
    field outputs weighted by the volume-rendering weights (NeRF eq. 3)."""
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, len(rays), chunk):
        part = rays[start : start + chunk]
        samples, _ = pipeline.sampler(part, pipeline.field)
        out = pipeline.field(samples)
        weights = render_weights(out["density"], samples.deltas, samples.ray_indices, len(part))
        for key, name in (("deformation", "flow"), ("rigidity", "rigidity")):
            if key in out:
                value = segment_sum(weights[:, None] * out[key], samples.ray_indices, len(part))
                parts.setdefault(name, []).append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def flow_image(flow: Tensor, scale: float) -> Tensor:
    """Displacement [H, W, 3] as colour: 0.5 grey is still, each axis one channel."""
    return (0.5 + 0.5 * flow / max(scale, 1e-6)).clamp(0, 1)


@torch.no_grad()
def write_maps(pipeline: Pipeline, scene: SceneData, device: torch.device, views: int,
               maps: int, chunk: int, out_dir: Path) -> list[Path]:  # fmt: skip
    """Write ``<name>_flow.png`` (and ``<name>_rigidity.png``) for the first ``maps`` of
    the ``views`` evaluated test views."""
    data = scene.split("test").to(device)
    was_training = pipeline.training
    pipeline.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    shape = (data.height, data.width)
    for index in eval_indices(len(data), views)[:maps]:
        maps = render_motion(pipeline, image_rays(data, index, scene), chunk)
        name = data.names[index] if data.names else f"{index:03d}"
        flow = maps["flow"].view(*shape, 3)
        path = out_dir / f"{name}_flow.png"
        iio.imwrite(path, to_uint8(flow_image(flow, float(flow.abs().max()))))
        written.append(path)
        if "rigidity" in maps:
            path = out_dir / f"{name}_rigidity.png"
            iio.imwrite(path, to_uint8(maps["rigidity"].view(*shape, 1).expand(*shape, 3)))
            written.append(path)
    pipeline.train(was_training)
    return written
