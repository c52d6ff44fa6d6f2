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

__all__ = [
    "REPORTED",
    "antialiased",
    "chosen_supersample",
    "depth_image",
    "error_image",
    "eval_indices",
    "evaluate",
    "render_view",
    "subpixel_offsets",
]


REPORTED = ("psnr", "ssim", "views", "seconds_per_view", "per_view_psnr", "per_view_ssim",
            "per_view_names", "supersample", "scales", "multiscale_psnr")  # fmt: skip
"""The keys of an evaluation that metrics.json keeps (the last two: multiscale runs)."""

PARTIAL_SHARE = 1e-3  # partly covered pixels per covered pixel that mark antialiased images
AUTO_SUPERSAMPLE = 2  # eval.supersample=0 on antialiased images: 2 x 2 rays per pixel
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


def subpixel_offsets(count: int) -> list[tuple[float, float]]:
    """The centres of a ``count`` x ``count`` grid over a pixel, as ``(dx, dy)`` from its
    centre in pixels (``[(0, 0)]`` for one)."""
    steps = [(i + 0.5) / count - 0.5 for i in range(count)]
    return [(dx, dy) for dy in steps for dx in steps]


def antialiased(views: Views) -> bool:
    """Whether the images' alpha shows antialiased edges: partly covered pixels make up at
    least ``PARTIAL_SHARE`` of the covered ones (one ray per pixel renders none)."""
    alpha = views.images[..., 3]
    covered = int((alpha > 0).sum())
    partial = int(((alpha > 0) & (alpha < 255)).sum())
    return covered > 0 and partial >= PARTIAL_SHARE * covered


def chosen_supersample(setting: int, views: Views) -> int:
    """``eval.supersample``: as set, or for 0 (auto) 2 where ``views`` are antialiased
    (``antialiased``), else 1."""
    if setting > 0:
        return setting
    return AUTO_SUPERSAMPLE if antialiased(views) else 1


def render_view(
    pipeline: Pipeline, data: Views, index: int, scene: SceneData, chunk: int,
    supersample: int = 1,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """One view's outputs; with ``supersample`` s > 1 each pixel is the mean of s x s rays
    over its area (a box filter, as renderers antialias their images), for every float
    output the renders share a shape for."""
    outs = [
        pipeline.render(image_rays(data, index, scene, offset), chunk)
        for offset in subpixel_offsets(supersample)
    ]
    mean = dict(outs[0])
    for key, value in outs[0].items():
        shared = all(torch.is_tensor(o.get(key)) and o[key].shape == value.shape for o in outs)
        if len(outs) > 1 and shared and value.is_floating_point():
            mean[key] = torch.stack([o[key] for o in outs]).mean(dim=0)
    return mean


def render_views(
    pipeline: Pipeline, data: Views, indices: list[int], scene: SceneData, chunk: int, label: str,
    progress: bool, supersample: int = 1,
) -> Iterator[tuple[int, dict[str, torch.Tensor], float]]:  # fmt: skip
    """Each view of ``indices``: its index, rendered outputs and render seconds."""
    for index in tqdm(indices, desc=label, disable=not progress, leave=False):
        start = time.perf_counter()
        out = render_view(pipeline, data, index, scene, chunk, supersample)
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
    supersample: int = 1,
) -> dict[str, Any]:
    """Mean PSNR and SSIM over the chosen views; writes pred/gt/error/depth PNGs to ``out_dir``.

    ``scales`` > 1 also scores the views box-filtered to 1/2, 1/4, ... (Mip-NeRF's
    multiscale protocol): ``scales`` holds each scale's means and ``multiscale_psnr``
    their average; images are written at full resolution only. ``supersample`` s > 1
    renders each pixel as the mean of s x s rays over its area (``render_view``).
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
        pipeline, data, indices, scene, chunk, f"eval {split}", progress, supersample
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
        "supersample": supersample,
    }
    if scales > 1:
        per_scale = {"1": {"psnr": result["psnr"], "ssim": result["ssim"]}}
        for factor in scale_factors(scales)[1:]:
            per_scale[str(factor)] = score_scale(
                pipeline, scaled_views(data, factor), indices, scene, chunk, progress, supersample
            )
        result["scales"] = per_scale
        result["multiscale_psnr"] = sum(v["psnr"] for v in per_scale.values()) / scales
    pipeline.train(was_training)
    return result


def score_scale(
    pipeline: Pipeline, data: Views, indices: list[int], scene: SceneData, chunk: int,
    progress: bool, supersample: int = 1,
) -> dict[str, float]:  # fmt: skip
    """Mean PSNR and SSIM of ``indices`` of ``data`` (one coarser scale)."""
    shape, psnrs, ssims = (data.height, data.width), [], []
    label = f"eval {data.width}x{data.height}"
    views = render_views(pipeline, data, indices, scene, chunk, label, progress, supersample)
    for _, out, _ in views:
        pred, target = out["rgb"].view(*shape, 3), out["target_rgb"].view(*shape, 3)
        psnrs.append(psnr(pred, target))
        ssims.append(ssim(pred, target))
    return {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims)}
