"""Evaluation on a split: render views, PSNR/SSIM per view, images on disk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import torch
from tqdm import tqdm

from atlas_core.data.images import to_uint8
from atlas_core.data.scales import scale_factors, scaled_views
from atlas_core.data.scene import SceneData, Views, image_rays
from atlas_core.nerf.contraction import distance_to_s
from atlas_core.nerf.metrics import psnr, ssim
from atlas_core.nerf.pipeline import Pipeline

__all__ = ["REPORTED", "depth_image", "error_image", "eval_indices", "evaluate"]


REPORTED = ("psnr", "ssim", "views", "seconds_per_view", "per_view_psnr", "per_view_ssim",
            "per_view_names", "scales", "multiscale_psnr")  # fmt: skip
"""The keys of an evaluation that metrics.json keeps (the last two: multiscale runs)."""

ERROR_GAIN = 4.0  # error images: full red at a mean absolute error of 0.25 or more


def error_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Red on black [H, W, 3]: ``ERROR_GAIN`` times the mean absolute error of colours in
    [0, 1] over the channels, clipped (green and blue a quarter of red)."""
    error = (pred[..., :3] - target[..., :3]).abs().mean(dim=-1, keepdim=True) * ERROR_GAIN
    red = error.clamp(0.0, 1.0)
    return torch.cat([red, red / 4, red / 4], dim=-1)


def eval_indices(total: int, views: int) -> list[int]:
    """N evenly spaced indices ``round(i * total / N)``; all of them when N is 0 or too large."""
    if views <= 0 or views >= total:
        return list(range(total))
    return [round(i * total / views) for i in range(views)]


def depth_image(depth: torch.Tensor, acc: torch.Tensor, near: float, far: float) -> torch.Tensor:
    """Depth as a grey image [H, W, 3]: near is white, far and empty space black."""
    scaled = 1.0 - ((depth - near) / (far - near)).clamp(0, 1)
    return (scaled * acc).expand(*depth.shape[:-1], 3)


def render_views(
    pipeline: Pipeline, data: Views, indices: list[int], scene: SceneData, chunk: int, label: str,
    progress: bool,
) -> Iterator[tuple[int, dict[str, torch.Tensor], float]]:  # fmt: skip
    """Each view of ``indices``: its index, rendered outputs and render seconds."""
    for index in tqdm(indices, desc=label, disable=not progress, leave=False):
        rays = image_rays(data, index, scene)
        start = time.perf_counter()
        out = pipeline.render(rays, chunk)
        yield index, out, time.perf_counter() - start


def evaluate(
    pipeline: Pipeline,
    scene: SceneData,
    device: torch.device,
    views: int,
    chunk: int,
    out_dir: Path | None = None,
    split: str = "test",
    progress: bool = True,
    scales: int = 1,
) -> dict[str, Any]:
    """Mean PSNR and SSIM over the chosen views; writes pred/gt/error/depth PNGs to ``out_dir``.

    ``scales`` > 1 also scores the views box-filtered to 1/2, 1/4, ... (Mip-NeRF's
    multiscale protocol): ``scales`` holds each scale's means and ``multiscale_psnr``
    their average; images are written at full resolution only.
    """
    data = scene.split(split).to(device)
    indices = eval_indices(len(data), views)
    was_training = pipeline.training
    pipeline.eval()
    psnrs, ssims, names = [], [], []
    render_seconds = 0.0
    shape = (data.height, data.width)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for index, out, seconds in render_views(
        pipeline, data, indices, scene, chunk, f"eval {split}", progress
    ):
        render_seconds += seconds
        pred = out["rgb"].view(*shape, 3)
        target = out["target_rgb"].view(*shape, 3)
        psnrs.append(psnr(pred, target))
        ssims.append(ssim(pred, target))
        name = data.names[index] if data.names else f"{index:03d}"
        names.append(name)
        if out_dir is not None:
            depth, acc = out["depth"].view(*shape, 1), out["acc"].view(*shape, 1)
            near, far = scene.near, scene.far
            if scene.space == "contract":  # rays reach 1e3: show the warped distance s instead
                depth = distance_to_s(depth)
                near, far = distance_to_s(torch.tensor([near, far], dtype=depth.dtype)).tolist()
            depth = depth_image(depth, acc, near, far)  # NDC scenes: NDC t, 0 near to 1 far
            iio.imwrite(out_dir / f"{name}_pred.png", to_uint8(pred))
            iio.imwrite(out_dir / f"{name}_gt.png", to_uint8(target))
            iio.imwrite(out_dir / f"{name}_error.png", to_uint8(error_image(pred, target)))
            iio.imwrite(out_dir / f"{name}_depth.png", to_uint8(depth))
            if "normals" in out:
                normals = out["normals"].view(*shape, 3) * 0.5 + 0.5
                iio.imwrite(out_dir / f"{name}_normals.png", to_uint8(normals))
    result = {
        "psnr": sum(psnrs) / len(psnrs),
        "ssim": sum(ssims) / len(ssims),
        "views": len(indices),
        "seconds_per_view": render_seconds / len(indices),
        "per_view_psnr": psnrs,
        "per_view_ssim": ssims,
        "per_view_names": names,
    }
    if scales > 1:
        per_scale = {"1": {"psnr": result["psnr"], "ssim": result["ssim"]}}
        for factor in scale_factors(scales)[1:]:
            per_scale[str(factor)] = score_scale(
                pipeline, scaled_views(data, factor), indices, scene, chunk, progress
            )
        result["scales"] = per_scale
        result["multiscale_psnr"] = sum(v["psnr"] for v in per_scale.values()) / scales
    pipeline.train(was_training)
    return result


def score_scale(
    pipeline: Pipeline, data: Views, indices: list[int], scene: SceneData, chunk: int,
    progress: bool,
) -> dict[str, float]:  # fmt: skip
    """Mean PSNR and SSIM of ``indices`` of ``data`` (one coarser scale)."""
    shape, psnrs, ssims = (data.height, data.width), [], []
    label = f"eval {data.width}x{data.height}"
    for _, out, _ in render_views(pipeline, data, indices, scene, chunk, label, progress):
        pred, target = out["rgb"].view(*shape, 3), out["target_rgb"].view(*shape, 3)
        psnrs.append(psnr(pred, target))
        ssims.append(ssim(pred, target))
    return {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims)}
