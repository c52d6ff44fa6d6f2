"""The generated scene: the loader's rays and lights reproduce its pixels exactly."""

from __future__ import annotations

from pathlib import Path

import torch
from atlas_plugin_relight.brdf import Reflectance, blinn_phong
from atlas_plugin_relight.data import load_nerv_point
from atlas_plugin_relight.integrators import DirectIntegrator
from atlas_plugin_relight.intersect import intersect
from atlas_plugin_relight.lights import DatasetLight
from atlas_plugin_relight.shadows import NoShadow
from atlas_plugin_relight.synth import ALBEDO, RADIUS, SHININESS, SPECULAR, write_point_scene
from torch import Tensor

from atlas_core.api import image_rays


class KnownMaterial(Reflectance):
    """The generator's Blinn-Phong with its constants, as a material."""

    def forward(self, x: Tensor, n: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        """The scene's true BRDF."""
        count = x.shape[0]
        albedo = x.new_tensor(ALBEDO).expand(count, 3)
        ks, s = x.new_full((count, 1), SPECULAR), x.new_full((count, 1), SHININESS)
        return blinn_phong(albedo, ks, s, n, wi, wo)


def sphere_sdf(x: Tensor) -> Tensor:
    """The generated sphere's SDF."""
    return x.norm(dim=-1, keepdim=True) - RADIUS


def shade_view(root: Path, index: int) -> tuple[Tensor, Tensor]:
    """Pixels of one loaded view and the same view shaded through the plugin's code."""
    scene = load_nerv_point(root)
    views = scene.splits["train"]
    rays = image_rays(views, index, scene)
    hits = intersect("secant", sphere_sdf, rays.origins, rays.directions, rays.near, rays.far, 64)
    x = rays.origins + hits.t * rays.directions
    n = x / x.norm(dim=-1, keepdim=True)
    positions, power = DatasetLight(1.0)(rays)
    args = (KnownMaterial(), NoShadow(), x, n, -rays.directions, positions, power)
    rgb = DirectIntegrator()(*args).clamp(0, 1) * hits.hit[:, None]
    target = rays.rgba[:, :3] * rays.rgba[:, 3:]
    assert torch.equal(hits.hit, rays.rgba[:, 3] > 0.5)
    return target, rgb


def test_moving_lights_render_as_the_renderer_shades(tmp_path: Path) -> None:
    root = write_point_scene(tmp_path / "s", 16, {"train": 3})
    for index in range(3):
        target, rgb = shade_view(root, index)
        assert float((target - rgb).abs().max()) < 1.5 / 255


def test_collocated_light_sits_at_the_camera_and_lights_the_centre(tmp_path: Path) -> None:
    root = write_point_scene(tmp_path / "s", 16, {"train": 2}, collocated=True)
    views = load_nerv_point(root).splits["train"]
    assert torch.allclose(views.extras["light_positions"][:, 0], views.c2w[:, :3, 3])
    target, rgb = shade_view(root, 0)
    assert float((target - rgb).abs().max()) < 1.5 / 255
    brightest = int(target.sum(-1).argmax())
    row, col = divmod(brightest, 16)
    assert abs(row - 7.5) <= 1 and abs(col - 7.5) <= 1  # facing the light: the centre
