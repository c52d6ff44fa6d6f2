"""``relight_volume`` on the SDF grid: shaded samples composited, geometry from radiance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_relight.data import load_nerv_point
from atlas_plugin_relight.lights import POSITIONS, POWER
from atlas_plugin_relight.losses import MaskLoss, RadianceLoss
from atlas_plugin_relight.options import RelightOptions
from atlas_plugin_relight.shading import shadow_density
from atlas_plugin_relight.synth import write_point_scene
from atlas_plugin_relight.volume import relative_falloff

from atlas_core.api import ConfigError, RunConfig, make_rays
from atlas_core.testing import build_pipeline, load_plugins

GRID = {"field": "volsdf_grid", "field.resolution": 24, "field.initial_resolution": 24,
        "field.upscale_steps": [], "relight.grid_resolution": 16,
        "relight.width": 16}  # fmt: skip


@pytest.fixture(scope="module")
def point_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 generated sphere, 8 train and 2 test views, one moving light each."""
    return write_point_scene(
        tmp_path_factory.mktemp("volume") / "scene", 16, {"train": 8, "test": 2}
    )


def pipeline_and_rays(scene_dir: Path, settings: dict):  # noqa: ANN201
    """A volsdf_grid+relight pipeline on the scene and 128 rays through its middle."""
    config = RunConfig()
    config.data.path, config.data.kind = str(scene_dir), "nerv_point"
    config.plugins = ["volsdf", "relight"]
    for key, value in {**GRID, **settings}.items():
        config.set(key, value)
    scene = load_nerv_point(scene_dir)
    torch.manual_seed(0)
    pipe = build_pipeline(config, load_plugins(config.plugins), scene)
    index = torch.arange(128) % len(scene.splits["train"])
    rows, cols = torch.randint(4, 12, (128,)), torch.randint(4, 12, (128,))
    return pipe, make_rays(scene.splits["train"], index, rows, cols, scene)


def grads(loss: torch.Tensor, *params: torch.Tensor) -> list[float]:
    """The gradient's magnitude reaching each parameter (0 where none)."""
    found = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [0.0 if g is None else float(g.coalesce().values().abs().sum() if g.is_sparse
                                          else g.abs().sum()) for g in found]  # fmt: skip


@pytest.mark.parametrize("geometry", ["neural", "radiance"])
def test_shading_trains_the_material_and_radiance_the_geometry(
    point_scene: Path, geometry: str
) -> None:
    settings = {"field.init": "sphere", "relight.shadow": "hard", "relight.geometry": geometry}
    pipe, rays = pipeline_and_rays(point_scene, settings)
    assert type(pipe.renderer).__name__ == "RelightVolumeRenderer"
    assert pipe.field.carve_views == 0  # the plugin's defaults for the warm-up
    assert (pipe.field.opacity, pipe.field.opacity_blur, pipe.field.min_component) == (
        0.35, 0.0, 0.004)  # fmt: skip
    outputs, field_outputs = pipe(rays)
    assert outputs["rgb"].shape == (128, 3) and bool(torch.isfinite(outputs["rgb"]).all())
    assert not torch.allclose(outputs["rgb"], outputs["relight_radiance"])
    target = outputs["target_rgb"]
    shaded = (outputs["rgb"] - target).square().mean()
    radiance = (outputs["relight_radiance"] - target).square().mean()
    sdf, material = pipe.field.sdf_grid, pipe.renderer.material.encoding.values
    gain = pipe.renderer.gain.log_gain
    assert grads(shaded, sdf, material, gain)[0] == 0.0  # shading leaves the surface alone
    assert min(grads(shaded, material, gain)) > 0
    assert grads(radiance, sdf)[0] > 0
    field_colour = pipe.field.rgb_net[0].weight
    if geometry == "neural":  # a light-aware network, reading the material's features
        neural = pipe.renderer.neural[0].weight
        assert grads(radiance, neural)[0] > 0 and grads(radiance, material)[0] > 0
        assert grads(radiance, field_colour)[0] == 0.0
    else:  # the field's own radiance
        assert pipe.renderer.neural is None
        assert grads(radiance, material)[0] == 0.0 and grads(radiance, field_colour)[0] > 0
    total, terms = pipe.loss(rays, outputs, field_outputs)
    assert {"rgb_l2", "relight_radiance", "eikonal", "relight_mask"} <= set(terms)
    assert pipe.weights["relight_mask"] == pytest.approx(0.1)


def test_the_geometry_image_shades_with_the_live_normals(point_scene: Path) -> None:
    pipe, rays = pipeline_and_rays(point_scene, {"field.init": "sphere", "relight.shadow": "none"})
    outputs, field_outputs = pipe(rays)
    normals = field_outputs["normals"]
    (to_radiance,) = torch.autograd.grad(outputs["relight_radiance"].sum(), normals,
                                         retain_graph=True)  # fmt: skip
    assert float(to_radiance.abs().sum()) > 0  # photometric stereo: the cosine reaches them
    (to_shaded,) = torch.autograd.grad(outputs["rgb"].sum(), normals, allow_unused=True)
    assert to_shaded is None or float(to_shaded.abs().sum()) == 0.0


def test_the_light_aware_network_sees_only_angles(point_scene: Path) -> None:
    # a rotation of normal, lights and view together leaves an isotropic reflectance as
    # it was; world-space vectors as inputs would let it undo a wrongly tilted surface
    pipe, _ = pipeline_and_rays(point_scene, {"field.init": "sphere"})
    torch.manual_seed(3)
    unit = lambda v: v / v.norm(dim=-1, keepdim=True)  # noqa: E731
    n, wo, wi = unit(torch.randn(32, 3)), unit(torch.randn(32, 3)), unit(torch.randn(32, 2, 3))
    features, radiance = (
        torch.randn(32, pipe.renderer.material.encoding.out_dim),
        torch.rand(32, 2, 3),
    )
    turn = torch.linalg.qr(torch.randn(3, 3))[0]
    plain = pipe.renderer.light_aware(features, n, wi, wo, radiance)
    turned = pipe.renderer.light_aware(features, n @ turn.T, wi @ turn.T, wo @ turn.T, radiance)
    assert torch.allclose(plain, turned, atol=1e-5) and float(plain.detach().abs().sum()) > 0
    moved = pipe.renderer.light_aware(features, n, wi.flip(0), wo, radiance)  # other angles
    assert not torch.allclose(plain, moved, atol=1e-3)


@pytest.mark.parametrize("warmup", ["falloff", "radiance"])
def test_density_warm_up_renders_the_field_radiance(point_scene: Path, warmup: str) -> None:
    settings = {"field.init": "density", "relight.warmup": warmup}
    pipe, rays = pipeline_and_rays(point_scene, settings)
    outputs, _ = pipe(rays)
    assert torch.equal(outputs["rgb"], outputs["relight_radiance"])


def test_relative_falloff_is_one_at_the_centre_and_unit_free() -> None:
    centre = torch.tensor([0.0, 0.0, 0.5])
    x = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    lights = torch.tensor([0.0, 0.0, 3.5]).expand(3, 1, 3)  # 3 units above the centre
    power = torch.full((3, 1, 3), 7.0)
    ratio = relative_falloff(x, lights, power, centre)
    assert torch.allclose(ratio[:, 0], torch.tensor([1.0, 9 / 1.5**2, 9 / 4.5**2]))
    assert torch.allclose(relative_falloff(x, lights, 1e3 * power, centre), ratio)
    two = torch.cat([lights, torch.tensor([0.0, 0.0, -2.5]).expand(3, 1, 3)], dim=1)
    weights = torch.cat([power, 3 * power], dim=1)  # the lower light 3x as strong
    expected = (1 / 1.5**2 + 3 / 4.5**2) / (1 / 9 + 3 / 9)
    assert torch.allclose(relative_falloff(x, two, weights, centre)[1], torch.tensor(expected))


def warm_up_image(scene: Path, warmup: str, distance: float, power: float) -> torch.Tensor:
    """The warm-up image of the same rays with every light ``distance`` from the scene's
    centre, along each camera's direction, of ``power``."""
    pipe, rays = pipeline_and_rays(scene, {"field.init": "density", "relight.warmup": warmup})
    pipe.eval()  # the white background, not a random one
    toward = rays.origins / rays.origins.norm(dim=-1, keepdim=True)
    rays.extras[POSITIONS] = (distance * toward)[:, None, :]
    rays.extras[POWER] = torch.full_like(rays.extras[POWER], power)
    with torch.no_grad():
        return pipe(rays)[0]["rgb"]


def test_the_warm_up_colour_falls_off_with_the_lights_distance(point_scene: Path) -> None:
    far = warm_up_image(point_scene, "falloff", 6.0, 1.0)
    near = warm_up_image(point_scene, "falloff", 1.5, 1.0)
    assert (far - near).abs().max() > 1e-3  # the sphere's near side is lit more
    assert torch.allclose(warm_up_image(point_scene, "falloff", 6.0, 50.0), far, atol=1e-6)
    plain = warm_up_image(point_scene, "radiance", 6.0, 1.0)
    assert torch.allclose(warm_up_image(point_scene, "radiance", 1.5, 9.0), plain)
    assert (plain - far).abs().max() > 1e-3


class Blocked(torch.nn.Module):
    """Every light hidden."""

    def forward(self, x, n, wi, dist):  # noqa: ANN001, ANN201
        return torch.zeros_like(dist)


def test_shadows_gate_each_light_per_ray(point_scene: Path) -> None:
    pipe, rays = pipeline_and_rays(point_scene, {"field.init": "sphere", "relight.shadow": "hard"})
    pipe.eval()  # the white background, not a random one
    with torch.no_grad():
        lit = pipe(rays)[0]
        assert bool((lit["rgb"] < 1 - 1e-3).any())
        pipe.renderer.shadow = Blocked()
        dark = pipe(rays)[0]
    assert torch.allclose(dark["rgb"], 1.0 - dark["acc"], atol=1e-6)  # background only
    # the light-aware geometry image is shadowed too, so shadows need no geometry
    assert bool((lit["relight_radiance"] < 1 - 1e-3).any())
    assert torch.allclose(dark["relight_radiance"], 1.0 - dark["acc"], atol=1e-6)


def test_shadow_rays_see_the_grid_density_unless_set(point_scene: Path) -> None:
    pipe, _ = pipeline_and_rays(point_scene, {"field.init": "sphere"})
    assert pipe.renderer.shadow.extinction == pipe.field.density  # the default
    pipe, _ = pipeline_and_rays(point_scene, {"field.init": "sphere", "relight.shadow": "hard"})
    assert pipe.renderer.shadow.extinction is None


def test_volume_shadow_needs_a_field_with_a_density() -> None:
    class SDFOnly(torch.nn.Module):
        def sdf(self, positions: torch.Tensor) -> torch.Tensor:
            return positions.norm(dim=-1, keepdim=True) - 1.0

    volume, hard = RelightOptions(shadow="volume"), RelightOptions(shadow="hard")
    assert shadow_density(hard, SDFOnly(), "renderer", "mine") is None
    with pytest.raises(ConfigError, match="relight.shadow=volume needs a field with a density"):
        shadow_density(volume, SDFOnly(), "renderer", "mine")


def test_radiance_loss_needs_the_volume_renderer() -> None:
    with pytest.raises(ConfigError, match="relight_volume"):
        RadianceLoss()(None, {"rgb": torch.zeros(1, 3)}, {})


@pytest.mark.parametrize("init", ["density", "sphere"])  # the warm-up, then the SDF
def test_the_mask_term_compares_opacity_with_alpha(point_scene: Path, init: str) -> None:
    soft = {"field.beta_init": 0.3, "field.beta_final": 0.3}  # opacities off the clamp's ends
    settings = {"field.init": init, "losses.relight_mask": 0.1, **soft}
    pipe, rays = pipeline_and_rays(point_scene, settings)
    outputs, field_outputs = pipe(rays)
    _, terms = pipe.loss(rays, outputs, field_outputs)
    assert torch.allclose(outputs["relight_opacity"], outputs["acc"])  # the same weights
    opacity = outputs["relight_opacity"].clamp(1e-3, 1 - 1e-3)
    alpha = rays.rgba[:, 3:]
    expected = -(alpha * opacity.log() + (1 - alpha) * (1 - opacity).log()).mean()
    assert float(terms["relight_mask"].detach()) == pytest.approx(
        float(expected.detach()), rel=1e-4
    )
    assert 0.0 < float(alpha.mean()) < 1.0  # the batch has object and background rays
    # the shaded image's opacity is held fixed; the geometry image's trains the grid
    assert init == "density" or not outputs["acc"].requires_grad
    assert grads(MaskLoss()(rays, outputs, field_outputs), pipe.field.sdf_grid)[0] > 0
    rays.rgba = None
    assert float(MaskLoss()(rays, outputs, field_outputs).detach()) == 0.0


def test_the_warm_up_trains_no_light(point_scene: Path) -> None:
    settings = {"field.init": "density", "relight.light": "learned"}
    pipe, rays = pipeline_and_rays(point_scene, settings)
    image = pipe(rays)[0]["relight_radiance"].sum()
    light = pipe.renderer.light
    assert grads(image, light.position, light.log_power) == [0.0, 0.0]
    assert grads(image, pipe.field.sdf_grid)[0] > 0
