"""Rendering one viewer frame: rays of a free camera through the run's pipeline, as an image."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from atlas_core.data.scene import SceneData, camera_rays
from atlas_core.nerf.rays import RayBundle
from atlas_core.viewer.cameras import focal_from_vertical_fov
from atlas_core.viewer.handle import OutputFn
from atlas_core.viewer.resolution import Resolution

__all__ = ["BUILTIN_OUTPUTS", "FrameRenderer", "colourise", "turbo"]

# dropdown name -> the pipeline's render output it shows
BUILTIN_OUTPUTS = {"colour": "rgb", "depth": "depth", "accumulation": "acc", "normals": "normals"}


def _pick(key: str) -> OutputFn:
    """An output showing the pipeline's render output ``key``."""

    def fn(rays: RayBundle, outputs: dict[str, Tensor]) -> Tensor:
        value = outputs[key]
        return (value + 1) / 2 if key == "normals" else value  # unit vectors to [0, 1]

    return fn


def turbo(x: Tensor) -> Tensor:
    """Google's Turbo colour map (polynomial fit) of values in [0, 1]: [..., 1] -> [..., 3]."""
    x = x.clamp(0, 1)
    r = 0.13572138 + x * (
        4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943)))
    )
    g = 0.09140261 + x * (
        2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604)))
    )
    b = 0.1066733 + x * (
        12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973)))
    )
    return torch.cat([r, g, b], dim=-1).clamp(0, 1)


def colourise(values: Tensor, width: int, height: int) -> np.ndarray:
    """Per-ray values [H*W, C] as an RGB uint8 image [H, W, 3].

    Three channels are colours in [0, 1]; one channel within [0, 1] is grey
    (accumulation), any other single channel (depth) is spread over its range in Turbo.
    """
    values = torch.nan_to_num(values.detach().float().reshape(height * width, -1))
    if values.shape[1] == 1:
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            values = values.expand(-1, 3)
        else:
            values = turbo((values - low) / max(high - low, 1e-8))
    elif values.shape[1] != 3:
        values = values[:, :3] if values.shape[1] > 3 else values[:, :1].expand(-1, 3)
    image = values.reshape(height, width, 3).clamp(0, 1)
    return (image * 255).round().to(torch.uint8).cpu().numpy()


class FrameRenderer:
    """Renders the run of ``trainer`` from free cameras, one output at a time.

    ``trainer`` is a Trainer (its ``pipeline``, ``view_pipeline()``, ``scene``, ``device``
    and ``config.eval.chunk``). Each chunk of rays renders holding ``lock`` (the lock the
    trainer holds around each step), so no chunk sees a half-updated model.
    """

    def __init__(self, trainer: Any, lock: threading.Lock | None = None, max_side: int = 0):
        self.trainer = trainer
        self.lock = lock
        views = trainer.scene.split("train")
        self.dynamic = views.times is not None
        side = max_side or min(max(views.width, views.height, 256), 1024)
        self.resolution = Resolution(side)
        self.outputs: dict[str, OutputFn] = {}
        for name, key in BUILTIN_OUTPUTS.items():
            if key in self.probe():
                self.outputs[name] = _pick(key)

    def scene_for(self, c2w: Tensor) -> SceneData:
        """The scene with near and far scaled by the camera's distance to the scene's centre
        over the training cameras' (so zooming out or in keeps the content in range)."""
        scene = self.trainer.scene
        if scene.space == "ndc":  # near/far are NDC t (0..1), the same for every camera
            return scene
        centre = torch.tensor(scene.bounds, dtype=torch.float64).view(2, 3).mean(0)
        train = scene.split("train").c2w[:, :3, 3].double()
        usual = float((train - centre).norm(dim=-1).mean())
        distance = float((c2w[:3, 3].detach().cpu().double() - centre).norm())
        scale = max(distance / max(usual, 1e-9), 0.05)
        return dataclasses.replace(scene, near=scene.near * scale, far=scene.far * scale)

    def _held(self) -> contextlib.AbstractContextManager[Any]:
        return self.lock if self.lock is not None else contextlib.nullcontext()

    def probe(self) -> set[str]:
        """The keys of the pipeline's render outputs (rendered once, for a 2x2 image)."""
        if not hasattr(self, "_keys"):
            views = self.trainer.scene.split("train")
            image = self._render(views.c2w[0], views.focal, 2, 2, 0.0, None, None)
            self._keys = set(image[1]) if image is not None else set()
        return self._keys

    def render(
        self,
        c2w: Tensor,
        fov: float,
        width: int,
        height: int,
        output: str = "colour",
        time_value: float = 0.0,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray | None:
        """Output ``output`` seen by camera ``c2w`` (OpenGL, vertical ``fov`` in radians) at
        time ``time_value``, as uint8 [height, width, 3]; None when ``cancelled()`` said so."""
        if output not in self.outputs:
            raise KeyError(f"no viewer output '{output}'; choose from {', '.join(self.outputs)}")
        focal = focal_from_vertical_fov(fov, height)
        start = time.perf_counter()
        done = self._render(c2w, focal, width, height, time_value, self.outputs[output], cancelled)
        if done is None:
            return None
        self.resolution.measured(width * height, time.perf_counter() - start)
        return colourise(done[0], width, height)

    def _render(
        self,
        c2w: Tensor,
        focal: float,
        width: int,
        height: int,
        time_value: float,
        fn: OutputFn | None,
        cancelled: Callable[[], bool] | None,
    ) -> tuple[Tensor, set[str]] | None:
        """Per-ray values of ``fn`` (or rgb) and the render's output keys; chunk by chunk."""
        trainer = self.trainer
        device = trainer.device
        rays = camera_rays(c2w.to(device).float(), focal, width, height, self.scene_for(c2w))
        rays.times = torch.full((len(rays), 1), float(time_value), device=device)
        chunk = trainer.config.eval.chunk
        pipeline = trainer.pipeline
        # an adapter (RendersViews: e.g. neural upsampling) needs the whole view at once
        whole = trainer.view_pipeline() is not pipeline
        step = len(rays) if whole else chunk
        parts, keys = [], set()
        for begin in range(0, len(rays), step):
            if cancelled is not None and cancelled():
                return None
            part = rays[begin : begin + step]
            with self._held():
                was_training = pipeline.training
                pipeline.eval()
                try:
                    outputs = trainer.view_pipeline().render(part, chunk)
                    value = fn(part, outputs) if fn is not None else outputs["rgb"]
                finally:
                    pipeline.train(was_training)
            keys.update(outputs)
            parts.append(value.detach().float().reshape(len(part), -1).cpu())
        return torch.cat(parts), keys
