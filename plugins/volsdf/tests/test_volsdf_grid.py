"""The volsdf_grid field: initial SDFs, gradients, the beta ceiling, growth, smoothness."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from atlas_plugin_volsdf import SDFGridField
from atlas_plugin_volsdf.grid_field import clean_occupancy, occupancy_to_sdf

from atlas_core.api import (
    RayBundle,
    RunConfig,
    connected_components,
    parameter_tags,
    read_ply,
    samples_from_bins,
)
from atlas_core.api import grid as grids
from atlas_core.testing import configure, load_toml, run_cli

BOUNDS = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def make_field(**options: object) -> SDFGridField:
    """A grid field over the unit box with small grids."""
    context = SimpleNamespace(scene=SimpleNamespace(bounds=BOUNDS))
    settings = {"resolution": 33, "initial_resolution": 17, "upscale_steps": (5,),
                "init": "sphere", "smooth": 0}  # fmt: skip
    return SDFGridField(context, **{**settings, **options})


def inside(count: int, seed: int = 0, scale: float = 0.9) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(count, 3, generator=generator) - 1)


def test_sphere_start_is_the_sphere_sdf_with_unit_gradients() -> None:
    field = make_field(radius=0.5)
    points = inside(500)
    points = points[points.norm(dim=-1) > 0.3]  # away from the cone point at the centre
    expected = points.norm(dim=-1, keepdim=True) - 0.5
    assert torch.allclose(field.sdf(points), expected, atol=0.02)
    norms = field.sdf_gradient(points).detach().norm(dim=-1)
    assert abs(float(norms.mean()) - 1) < 0.02 and float((norms - 1).abs().max()) < 0.2
    assert field.radius == 0.5 and make_field().radius == 1.0  # 0: the inscribed sphere


def test_density_warm_up_starts_as_a_faint_dvgo_fog() -> None:
    field = make_field(init="density", warmup_steps=3, alpha_init=0.01)
    voxel = 2.0 / 32  # one voxel of the final grid
    alpha = 1 - torch.exp(-field.density(inside(5)) * voxel)
    assert torch.allclose(alpha, torch.full_like(alpha, 0.01), rtol=1e-3)
    assert field.sdf_gradient(inside(4)).shape == (0, 3) and not bool(field.is_sdf)
    assert float(field.sdf(inside(1)).detach()) > 0  # the opacity stand-in: nothing opaque yet


@pytest.mark.parametrize(("blur", "opacity_blur"), [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0)])
def test_conversion_gives_the_sdf_of_the_opaque_voxels_cleaned(
    blur: float, opacity_blur: float
) -> None:
    field = make_field(init="density", warmup_steps=3, upscale_steps=(), initial_resolution=33,
                       blur=blur, opacity_blur=opacity_blur)  # fmt: skip
    points = grids.vertices(field.low, field.high, field.shape)
    ball = points.norm(dim=-1) < 0.5
    hollow = ball & (points.norm(dim=-1) > 0.3)  # a shell: the cavity must be filled
    speck = (points - torch.tensor([0.8, 0.8, 0.8])).norm(dim=-1) < 0.05  # a floater
    with torch.no_grad():
        field.sdf_grid.copy_(torch.where(hollow | speck, 20.0, -20.0)[:, None])
    assert not field.grow(2) and field.grow(3) and bool(field.is_sdf)
    probe = inside(400, seed=2)
    expected = probe.norm(dim=-1, keepdim=True) - 0.5
    voxel = 2.0 / 32  # blurring the opacity first grows the solid by under one more voxel
    assert (field.sdf(probe) - expected).abs().max() < (1 + opacity_blur) * voxel
    assert float(field.sdf(torch.tensor([[0.0, 0.0, 0.0]])).detach()) < -0.3  # filled
    assert float(field.sdf(torch.tensor([[0.8, 0.8, 0.8]])).detach()) > 0.5  # the speck is gone
    assert parameter_tags(field.sdf_grid).lr_scale == 0.2 and field.beta == pytest.approx(0.02)


@pytest.mark.parametrize("seal", [0, 1])
def test_conversion_seals_a_shell_open_through_a_pinhole(seal: int) -> None:
    field = make_field(init="density", warmup_steps=1, upscale_steps=(),
                       initial_resolution=33, blur=0.0, opacity_blur=0.0, seal=seal)  # fmt: skip
    points = grids.vertices(field.low, field.high, field.shape)
    radius = points.norm(dim=-1)
    pinhole = (points[:, :2].abs() < 0.01).all(dim=-1) & (points[:, 2] > 0)  # one vertex wide
    shell = (radius < 0.5) & (radius > 0.3) & ~pinhole
    with torch.no_grad():
        field.sdf_grid.copy_(torch.where(shell, 20.0, -20.0)[:, None])
    assert field.grow(1)
    centre, hole = torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.4]])
    assert (float(field.sdf(centre).detach()) < -0.2) == bool(seal)  # the cavity filled
    assert float(field.sdf(hole).detach()) > 0  # the plug is not added
    outside = (radius > 0.56) & (radius < 0.9)
    assert (field.sdf(points[outside]) > 0).all()  # nothing grows outside the shell


def test_conversion_blurs_the_signed_distance_by_blur_alone() -> None:
    centre = torch.tensor([[0.0, 0.0, 0.0]])
    depths = []
    for blur in (0.0, 1.0):  # the opacity unblurred in both
        field = make_field(init="density", warmup_steps=1, upscale_steps=(), blur=blur,
                           initial_resolution=33, opacity_blur=0.0, smooth=0)  # fmt: skip
        points = grids.vertices(field.low, field.high, field.shape)
        with torch.no_grad():
            field.sdf_grid.copy_(torch.where(points.norm(dim=-1) < 0.5, 20.0, -20.0)[:, None])
        assert field.grow(1)
        depths.append(float(field.sdf(centre).detach()))
    assert depths[1] > depths[0] + 0.02  # a blur lifts the distance's apex at the centre


def test_conversion_blur_drops_single_voxel_specks() -> None:
    speck_vertex = torch.tensor([[0.8125, 0.8125, 0.8125]])  # vertex 29 of 33 on each axis
    for opacity_blur, kept in ((0.0, True), (1.0, False)):  # the SDF itself unblurred
        field = make_field(init="density", warmup_steps=1, upscale_steps=(), blur=0.0,
                           initial_resolution=33, opacity_blur=opacity_blur,
                           min_component=0.0)  # fmt: skip
        points = grids.vertices(field.low, field.high, field.shape)
        solid = (points.norm(dim=-1) < 0.5) | ((points - speck_vertex).norm(dim=-1) < 0.01)
        with torch.no_grad():
            field.sdf_grid.copy_(torch.where(solid, 20.0, -20.0)[:, None])
        assert field.grow(1)
        assert (float(field.sdf(speck_vertex).detach()) < 0) == kept


def test_occupancy_helpers_on_edge_cases() -> None:
    empty = np.zeros((4, 4, 4), dtype=bool)
    assert (occupancy_to_sdf(empty, (0.1,) * 3) > 0).all()
    assert (occupancy_to_sdf(~empty, (0.1,) * 3) < 0).all()
    line = empty.copy()
    line[2, 2, :] = True
    sdf = occupancy_to_sdf(line, (0.1, 0.1, 0.1))
    assert sdf[2, 2, 0] == pytest.approx(-0.05) and sdf[0, 2, 0] == pytest.approx(0.15)
    two = empty.copy()
    two[0, 0, 0] = two[3, 3, 3] = True
    assert clean_occupancy(two, 0.5).sum() == 2  # equal sizes both stay
    assert clean_occupancy(two, 0.5, seal=2).sum() == 2  # sealing adds no plug or fillet


def test_the_sampler_steps_a_third_of_a_final_voxel() -> None:
    assert make_field().sample_step == pytest.approx(0.3 * 2.0 / 32)  # 33 vertices on 2


def test_outside_the_box_the_field_is_empty_and_finite() -> None:
    field = make_field(radius=0.5)
    far = torch.tensor([[3.0, 0.0, 0.0]])
    assert float(field.sdf(far).detach()) == pytest.approx(2.0)  # the distance to the box
    assert torch.equal(field.sdf_gradient(far), torch.zeros(1, 3))


def test_beta_ceiling_anneals_geometrically_and_caps_the_learned_beta() -> None:
    field = make_field(beta_init=0.2, beta_final=0.02, anneal_steps=100)  # SDF from step 0
    assert field.ceiling_at(0) == pytest.approx(0.2)
    assert field.ceiling_at(50) == pytest.approx(math.sqrt(0.2 * 0.02))
    assert field.ceiling_at(100) == field.ceiling_at(900) == pytest.approx(0.02)
    field.grow(50)
    assert field.beta == pytest.approx(math.sqrt(0.2 * 0.02))  # learned 0.2, capped
    with torch.no_grad():
        field.laplace.beta_param.fill_(0.01)
    assert field.beta == pytest.approx(0.01 + field.laplace.beta_min)  # below the cap


def test_smoothing_passes_blur_the_sdf_in_every_read() -> None:
    rough, smooth = make_field(), make_field(smooth=2)
    points = grids.vertices(rough.low, rough.high, rough.shape)
    plane = points[:, 2:] - 0.1
    noise = 0.1 * torch.randn(plane.shape, generator=torch.Generator().manual_seed(3))
    for field in (rough, smooth):
        with torch.no_grad():
            field.sdf_grid.copy_(plane + noise)
    probe = inside(300, seed=4, scale=0.6)  # away from the box's faces
    truth = probe[:, 2:] - 0.1
    error = {f.smooth: float((f.sdf(probe).detach() - truth).abs().mean()) for f in (rough, smooth)}
    assert error[2] < 0.3 * error[0]  # the plane passes, the noise is averaged away
    with torch.enable_grad():
        trained = smooth.density(probe)
    assert trained.requires_grad and torch.allclose(trained, smooth.density(probe))
    before = smooth.sdf(probe)  # a cached copy when no gradient is needed...
    with torch.no_grad():
        smooth.sdf_grid.add_(0.05)
    assert torch.allclose(smooth.sdf(probe), before + 0.05, atol=1e-5)  # ...that follows steps


@pytest.mark.parametrize("detach", [True, False])
def test_colour_reaches_the_sdf_through_the_normals_only_when_attached(detach: bool) -> None:
    field = make_field(radius=0.5, detach_normals=detach)
    count = 8
    origins = torch.tensor([[0.0, 0.0, -0.9]]).expand(count, 3) + 0.1 * inside(count)
    directions = torch.tensor([[0.0, 0.0, 1.0]]).expand(count, 3)
    column = torch.ones(count, 1)
    rays = RayBundle(origins, directions, 0 * column, column, 0.01 * column,
                     torch.zeros(count, dtype=torch.long))  # fmt: skip
    samples = samples_from_bins(rays, torch.linspace(0.0, 0.8, 9).expand(count, 9))
    field(samples)["rgb"].sum().backward()  # a colour loss alone
    grad = field.sdf_grid.grad
    reached = grad is not None and bool(grad.coalesce().values().abs().sum() > 0)
    assert reached != detach
    assert field.feature_grid.grad is not None  # the colour still trains its features


def test_grow_upsamples_both_grids_keeping_the_sdf() -> None:
    field = make_field(radius=0.6)
    points = inside(200, seed=1)
    before = field.sdf(points)
    assert not field.grow(4) and field.shape == (17, 17, 17)
    assert field.grow(5) and field.shape == (33, 33, 33)
    assert (
        field.feature_grid.shape == (33**3, 12) and parameter_tags(field.sdf_grid).lr_scale == 0.2
    )
    assert torch.allclose(field.sdf(points), before, atol=0.01)


def test_state_dict_round_trip_across_resolutions_and_stages() -> None:
    trained = make_field(init="density", warmup_steps=5)
    trained.grow(5)  # upscaled and converted
    fresh = make_field(init="density", warmup_steps=5)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.shape == trained.shape and torch.equal(fresh.sdf_grid, trained.sdf_grid)
    assert bool(fresh.is_sdf) and parameter_tags(fresh.sdf_grid).lr_scale == 0.2


def test_bad_options_are_refused() -> None:
    for options in ({"init": "cube"}, {"beta_final": 0.5}, {"alpha_init": 1.0},
                    {"radius": -1.0}, {"initial_resolution": 40}, {"opacity": 0.0},
                    {"init": "density", "warmup_steps": 0}, {"blur": -1.0}, {"seal": -1},
                    {"opacity_blur": -1.0}, {"smooth": -1}):  # fmt: skip
        with pytest.raises(ValueError):
            make_field(**options)


def test_configure_chooses_occupancy_sampling_for_the_grid(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("volsdf",))
    config = RunConfig()
    config.set("field", "volsdf_grid")
    configure(config, loaded)
    assert config.sampler.name == "occupancy" and config.train.target_samples == 1 << 16
    assert config.losses["eikonal"] == 0.1 and config.sampler.options["weight_threshold"] == 1e-4
    assert config.renderer.options["background"] == "random"
    plain = RunConfig()
    configure(plain, loaded)
    assert plain.field.name == "volsdf" and plain.sampler.name == "stratified"
    assert "background" not in plain.renderer.options  # the MLP keeps the core's white
    chosen = RunConfig()
    chosen.set("field", "volsdf_grid")
    chosen.set("renderer.background", "black")
    configure(chosen, loaded)
    assert chosen.renderer.options["background"] == "black"


def grid_run(scene: object, out: object, *extra: str) -> int:
    """A short CLI run of the volsdf_grid field on small grids."""
    args = ["run", "--data", str(scene), "--out", str(out), "--plugins", "volsdf",
            "--max-steps", "40", "--eval-views", "1", "--set", "eval.video_frames=0",
            "--set", "field=volsdf_grid", "--set", "field.resolution=24",
            "--set", "field.initial_resolution=12", "--set", "field.upscale_steps=[20]",
            "--set", "train.target_samples=4096"]  # fmt: skip
    return run_cli([*args, *extra])


def test_cli_warm_up_converts_and_resumes(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.testing import load_trained

    out = tmp_path / "g"
    extra = ("--set", "field.warmup_steps=25", "--set", "volsdf.eikonal_points=64")
    assert grid_run(atlas_scene, out, *extra) == 0
    config = load_toml(out / "config.toml")
    assert config.field.name == "volsdf_grid" and config.losses["eikonal"] == 0.1
    field = load_trained(str(out), "cpu").pipeline.field
    assert bool(field.is_sdf) and field.shape == (24, 24, 24)  # converted at step 25
    assert run_cli(["run", "--resume", "--out", str(out), "--max-steps", "45"]) == 0


def test_cli_sphere_start_exports_one_surface(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "s"
    assert grid_run(atlas_scene, out, "--set", "field.init=sphere") == 0
    assert run_cli(["export", str(out), "mesh", "--resolution", "32"]) == 0
    mesh = read_ply(out / "mesh.ply")
    assert len(mesh.vertices) > 100 and connected_components(mesh) >= 1
