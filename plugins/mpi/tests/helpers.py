"""Building the mpi field and sampler on a small in-memory forward-facing scene."""

from __future__ import annotations

from typing import Any

import torch
from atlas_plugin_mpi import MPIField

from atlas_core.api import BuildContext, RunConfig, SceneData, Views, VolumeRenderer, camera_rays
from atlas_core.testing import configure, load_plugins

SIZE, FOCAL, HEIGHT = 16, 16.0, 4.0  # image size, focal (pixels), camera height


def pose(x: float = 0.0, y: float = 0.0) -> torch.Tensor:
    """A camera at ``(x, y, HEIGHT)`` looking down -Z."""
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor([x, y, HEIGHT])
    return c2w


def facing_scene(offsets: tuple[float, ...] = (0.0,), box: float = 10.0) -> SceneData:
    """Cameras at ``(x, 0, HEIGHT)`` for each offset; random images; a large box."""
    generator = torch.Generator().manual_seed(0)
    count = len(offsets)
    images = torch.randint(0, 256, (count, SIZE, SIZE, 4), generator=generator, dtype=torch.uint8)
    c2w = torch.stack([pose(x) for x in offsets])
    views = Views(images, c2w, FOCAL, names=[f"v{i}" for i in range(count)])
    return SceneData({"train": views, "test": views}, bounds=(-box,) * 3 + (box,) * 3)


def build(scene: SceneData, **options: Any) -> tuple[BuildContext, MPIField, Any]:
    """The run's (configured) field and sampler with the plugin enabled."""
    config = RunConfig()
    config.plugins = ["mpi"]
    for key, value in options.items():
        config.set(f"field.{key}", value)
    plugins = load_plugins(["mpi"])
    configure(config, plugins)
    context = BuildContext(config, plugins, scene)
    field = context.field = context.make_field()
    return context, field, context.create("sampler", config.sampler)


def render(field: MPIField, sampler: Any, c2w: torch.Tensor, scene: SceneData,
           background: str = "black") -> dict[str, torch.Tensor]:  # fmt: skip
    """An image [SIZE*SIZE] of rgb, depth and acc through sampler, field and renderer."""
    rays = camera_rays(c2w, FOCAL, SIZE, SIZE, scene)
    samples, _ = sampler(rays, field)
    renderer = VolumeRenderer(background)
    out = renderer(field(samples), samples, renderer.background_color(rays))
    out["directions"] = rays.directions
    return out


def set_planes(field: MPIField, rgb_logit: float, alpha_logit: float) -> None:
    """Fill every plane with one colour and alpha logit."""
    with torch.no_grad():
        field.planes[:, :3] = rgb_logit
        field.planes[:, 3] = alpha_logit
