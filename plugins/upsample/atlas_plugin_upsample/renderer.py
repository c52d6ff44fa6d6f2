"""UpsampleRenderer: volume-render rgb + features at low resolution, upsample with a CNN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.api import (
    CROP_KEY,
    AtlasError,
    Background,
    RayBundle,
    RaySamples,
    SceneData,
    VolumeRenderer,
    crop_shape,
    decimate,
    plugin_options,
    segment_sum,
)
from atlas_plugin_upsample.cnn import UpsampleCNN
from atlas_plugin_upsample.options import UpsampleOptions

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


class UpsampleRenderer(VolumeRenderer):
    """Alpha compositing of rgb and ``features``; on a crop batch, the CNN's upsampled image.

    Renders one ray per ``scale`` x ``scale`` block (``ray_stride``: the trainer draws
    crop batches that way) and outputs ``upsampled_rgb`` [B*H*W, 3], the crops at full
    resolution, row-major. Whole views are rendered by ``view_renderer``.
    """

    def __init__(self, context: BuildContext, background: Background = "white"):
        super().__init__(background)
        options = plugin_options(context.config, "upsample", UpsampleOptions)
        self.ray_stride = options.scale
        self.cnn = UpsampleCNN(3 + options.features, options.scale, options.width, options.blocks)

    def forward(
        self, outputs: dict[str, Tensor], samples: RaySamples, background: Tensor
    ) -> dict[str, Tensor]:
        """Composite rgb and features; upsample when the rays form whole crops."""
        result = super().forward(outputs, samples, background)
        channels = [result["rgb"]]
        if "features" in outputs:
            w = result["weights"][:, None]
            num_rays = samples.num_rays
            channels.append(segment_sum(w * outputs["features"], samples.ray_indices, num_rays))
        result["features"] = torch.cat(channels, dim=-1)
        result["background"] = background
        shape = crop_shape(samples.rays)
        if shape is not None:
            result["upsampled_rgb"] = self.upsample(result["features"], shape)
        return result

    def upsample(self, features: Tensor, shape: tuple[int, int, int]) -> Tensor:
        """Per-ray features of B h x w crops to full-resolution rgb [B*H*W, 3]."""
        count, height, width = shape
        images = features.view(count, height, width, -1).permute(0, 3, 1, 2)
        return self.cnn(images).permute(0, 2, 3, 1).reshape(-1, 3)

    def view_renderer(self, pipeline: nn.Module, scene: SceneData) -> ViewUpsampler:
        """The adapter that renders whole views for evaluation and videos."""
        return ViewUpsampler(pipeline, self, scene)


class ViewUpsampler:
    """Renders a whole view: its low-resolution rays in chunks, then the CNN once."""

    def __init__(self, pipeline: nn.Module, renderer: UpsampleRenderer, scene: SceneData):
        self.pipeline, self.renderer = pipeline, renderer
        self.sizes = {v.height * v.width: (v.height, v.width) for v in scene.splits.values()}

    @property
    def training(self) -> bool:
        """The pipeline's mode."""
        return self.pipeline.training

    def train(self, mode: bool = True) -> Any:  # noqa: ANN401
        """Set the pipeline's mode."""
        return self.pipeline.train(mode)

    def eval(self) -> Any:  # noqa: ANN401
        """Evaluation mode."""
        return self.pipeline.eval()

    @torch.no_grad()
    def render(self, rays: RayBundle, chunk: int) -> dict[str, Tensor]:
        """rgb, depth, acc (and target_rgb) of one whole view's row-major rays."""
        if len(rays) not in self.sizes:
            raise AtlasError(f"upsample: {len(rays)} rays are not one whole view of this scene")
        height, width = self.sizes[len(rays)]
        stride = self.renderer.ray_stride
        if height % stride or width % stride:
            raise AtlasError(f"upsample: view {height}x{width} is not a multiple of scale {stride}")
        rays.extras[CROP_KEY] = torch.stack(
            torch.meshgrid(
                torch.zeros(1, dtype=torch.long, device=rays.origins.device),
                torch.arange(height, device=rays.origins.device),
                torch.arange(width, device=rays.origins.device),
                indexing="ij",
            ),
            dim=-1,
        ).reshape(-1, 3)
        low = decimate(rays, stride)
        del low.extras[CROP_KEY]  # chunks are not whole images: render features only
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(low), chunk):
            outputs, _ = self.pipeline(low[start : start + chunk])
            for key in ("features", "depth", "acc", "background"):
                parts.setdefault(key, []).append(outputs[key])
        low_out = {key: torch.cat(values) for key, values in parts.items()}
        shape = (1, height // stride, width // stride)
        rgb = self.renderer.upsample(low_out["features"], shape).clamp(0.0, 1.0)
        result = {"rgb": rgb}
        for key in ("depth", "acc"):
            image = low_out[key].view(1, *shape[1:], 1).permute(0, 3, 1, 2)
            full = F.interpolate(image, scale_factor=stride, mode="nearest")
            result[key] = full.permute(0, 2, 3, 1).reshape(-1, 1)
        if rays.rgba is not None:
            background = torch.ones_like(rgb)
            if self.renderer.background != "learned":
                background = self.renderer.background_color(rays)
            alpha = rays.rgba[:, 3:]
            result["target_rgb"] = rays.rgba[:, :3] * alpha + background * (1 - alpha)
        return result
