"""The run's model: sampler, field, renderer and weighted losses.

Data flow: RayBundle -> Sampler -> RaySamples -> Field -> outputs -> Renderer -> image,
and the weighted sum of the loss terms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from atlas_core.build import BuildContext, configure
from atlas_core.capabilities import check_declarations
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.nerf.rays import RayBundle
from atlas_core.nerf.renderers import Renderer
from atlas_core.nerf.samplers import COARSE_ACC, COARSE_RGB
from atlas_core.plugins import AtlasPlugins

__all__ = ["Pipeline", "assemble", "build", "protocol_background"]


class Pipeline(nn.Module):
    """Sampler, field, renderer and weighted losses of one run."""

    def __init__(self, context: BuildContext):
        super().__init__()
        config = context.config
        self.field = context.field = context.make_field()
        self.sampler = context.create("sampler", config.sampler)
        self.renderer = context.create("renderer", config.renderer)
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, weight in config.losses.items():
            component = context.plugins.registry.get("losses", name)
            self.losses[name] = context.call(component.factory, f"loss '{name}'", name, {})
            self.weights[name] = weight
        self.last_num_samples = 0
        check_declarations(self)

    def forward(self, rays: RayBundle) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Render ``rays``; returns per-ray outputs and per-sample field outputs."""
        samples, extras = self.sampler(rays, self.field)
        self.last_num_samples = samples.t_starts.shape[0]
        field_outputs = self.field(samples)
        background = self.renderer.background_color(rays)
        outputs = self.renderer(field_outputs, samples, background)
        extras = dict(extras)
        if COARSE_RGB in extras:
            extras[COARSE_RGB] = extras[COARSE_RGB] + (1 - extras[COARSE_ACC]) * background
        outputs.update(extras)
        if rays.rgba is not None:
            target_bg = background
            if isinstance(self.renderer, Renderer):
                target_bg = self.renderer.target_background(rays, background)
            alpha = rays.rgba[:, 3:]
            outputs["target_rgb"] = rays.rgba[:, :3] * alpha + target_bg * (1 - alpha)
        return outputs, field_outputs

    def loss(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted total and the individual (unweighted) terms."""
        terms = {name: loss(rays, outputs, field_outputs) for name, loss in self.losses.items()}
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, terms

    @torch.no_grad()
    def render(self, rays: RayBundle, chunk: int) -> dict[str, Tensor]:
        """Render many rays in chunks without gradients: rgb, depth, acc."""
        keep = ("rgb", "depth", "acc", "target_rgb", "normals")
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(rays), chunk):
            outputs, _ = self(rays[start : start + chunk])
            for key in keep:
                if key in outputs:
                    parts.setdefault(key, []).append(outputs[key])
        return {key: torch.cat(values) for key, values in parts.items()}


def protocol_background(config: RunConfig) -> str:
    """The colour test images are composited over for metrics."""
    return "black" if config.renderer.options.get("background") == "black" else "white"


def assemble(config: RunConfig, plugins: AtlasPlugins, scene: SceneData) -> Pipeline:
    """Build the pipeline of a configured run."""
    return Pipeline(BuildContext(config, plugins, scene))


def build(config: RunConfig, plugins: AtlasPlugins, scene: SceneData) -> Pipeline:
    """Configure the run with its plugins, then build its pipeline."""
    configure(config, plugins)
    return assemble(config, plugins, scene)
