"""VoxelField: outputs, gradients, the density activation, options, progressive upscaling."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_voxel.field import VoxelField

from atlas_core.api import (
    BuildContext,
    ConfigError,
    RayBundle,
    RaySamples,
    RunConfig,
    SceneData,
    parameter_tags,
)
from atlas_core.api import grid as grids

BOUNDS = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def make_field(bounds: tuple[float, ...] = BOUNDS, **options: object) -> VoxelField:
    options.setdefault("resolution", 16)
    options.setdefault("initial_resolution", 16)
    options.setdefault("upscale_steps", ())
    context = BuildContext(RunConfig(), None, SceneData({}, bounds=bounds))
    return VoxelField(context, **options)


def make_samples(count: int = 64, rays: int = 8, seed: int = 0) -> RaySamples:
    """``count`` samples on ``rays`` rays through the unit box."""
    generator = torch.Generator().manual_seed(seed)
    origins = torch.rand(rays, 3, generator=generator) * 0.4 - 0.2 + torch.tensor([0, 0, -3.0])
    directions = torch.nn.functional.normalize(torch.tensor([0, 0, 1.0]) + origins * 0.1, dim=-1)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(origins, directions, ones * 2, ones * 4, ones * 1e-3, torch.arange(rays))
    per_ray = count // rays
    t = torch.linspace(2.0, 4.0, per_ray + 1)
    starts = t[:-1].repeat(rays)[:, None]
    ends = t[1:].repeat(rays)[:, None]
    indices = torch.arange(rays).repeat_interleave(per_ray)
    return RaySamples(bundle, starts, ends, indices)


def randomise(field: VoxelField, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for grid in (field.density_grid, field.feature_grid):
            grid.copy_(torch.randn(grid.shape, generator=generator))


@pytest.mark.parametrize("color", ["mlp", "sh"])
def test_output_shapes_and_ranges(color: str) -> None:
    field = make_field(color=color)
    randomise(field)
    samples = make_samples()
    out = field(samples)
    assert out["density"].shape == (64, 1) and out["rgb"].shape == (64, 3)
    assert (out["density"] >= 0).all() and ((out["rgb"] > 0) & (out["rgb"] < 1)).all()
    assert field.density(samples.positions).shape == (64, 1)
    assert torch.allclose(field.density(samples.positions), out["density"])
    expected = 27 if color == "sh" else 12
    assert field.feature_grid.shape == (16**3, expected) and field.density_grid.shape == (16**3, 1)


@pytest.mark.parametrize("color", ["mlp", "sh"])
def test_finite_gradients_reach_grids_and_mlp(color: str) -> None:
    field = make_field(color=color)
    randomise(field)
    out = field(make_samples())
    (out["density"].sum() + out["rgb"].sum()).backward()
    params = dict(field.named_parameters())
    for name in ("density_grid", "feature_grid"):  # training: sparse rows of the grids
        assert params[name].grad.is_sparse, name
        params[name].grad = params[name].grad.to_dense()
    assert set(params) >= {"density_grid", "feature_grid"}
    if color == "mlp":
        assert any(name.startswith("rgb_net") for name in params)
    else:
        assert not any(name.startswith("rgb_net") for name in params)
    for name, param in params.items():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_initial_density_gives_alpha_init_per_voxel() -> None:
    field = make_field(resolution=33, initial_resolution=17, upscale_steps=(5,), alpha_init=0.02)
    density = field.density(torch.zeros(1, 3)).detach()[0, 0]
    voxel = 2.0 / 32  # final resolution along the box's side
    assert math.isclose(1 - math.exp(-float(density) * voxel), 0.02, rel_tol=1e-5)


def test_outside_the_box_is_empty() -> None:
    field = make_field()
    randomise(field)
    outside = torch.tensor([[1.2, 0.0, 0.0], [0.0, -1.5, 0.3], [0.0, 0.0, 9.0]])
    assert torch.equal(field.density(outside), torch.zeros(3, 1))


def test_grid_shape_follows_the_box() -> None:
    assert grids.grid_shape((2.0, 2.0, 2.0), 16) == (16, 16, 16)
    assert grids.grid_shape((2.0, 1.0, 0.5), 17) == (17, 9, 5)
    field = make_field(
        bounds=(-1.0, -0.5, 0.0, 1.0, 0.5, 0.5), resolution=17, initial_resolution=17
    )
    assert field.shape == (17, 9, 5)


def test_schedule_and_resolution_at() -> None:
    assert grids.schedule(16, 16, 0) == [16]
    assert grids.schedule(16, 128, 3) == [16, 32, 64, 128]
    field = make_field(resolution=64, initial_resolution=16, upscale_steps=(10, 20))
    assert [field.resolution_at(s) for s in (0, 9, 10, 19, 20, 999)] == [16, 16, 32, 32, 64, 64]


@pytest.mark.parametrize(
    "options",
    [
        {"initial_resolution": 32, "resolution": 16},
        {"initial_resolution": 1},
        {"initial_resolution": 8, "resolution": 16, "upscale_steps": ()},
        {"initial_resolution": 8, "resolution": 16, "upscale_steps": (20, 10)},
        {"initial_resolution": 8, "resolution": 16, "upscale_steps": (0,)},
        {"features": 0},
        {"alpha_init": 1.0},
        {"grid_lr_scale": 0.0},
        {"box_threshold": 1.0},
        {"box_threshold": -0.1},
    ],
)
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError):
        make_field(**options)


def test_options_are_config_keys(atlas_pm) -> None:  # noqa: ANN001
    import atlas_plugin_voxel

    from atlas_core.api import Pipeline

    config = RunConfig()
    config.set("field", "voxel")
    for key, value in {"field.resolution": 12, "field.initial_resolution": 6,
                       "field.upscale_steps": [3], "field.color": "sh"}.items():  # fmt: skip
        config.set(key, value)
    pipeline = Pipeline(BuildContext(config, atlas_pm(atlas_plugin_voxel), SceneData({})))
    assert pipeline.field.shape == (6, 6, 6) and pipeline.field.resolutions == [6, 12]
    assert pipeline.field.feature_grid.shape == (6**3, 27)
    config.set("field.color", "rgb")
    with pytest.raises(ConfigError, match="field.color"):
        Pipeline(BuildContext(config, atlas_pm(atlas_plugin_voxel), SceneData({})))


def test_grids_carry_their_lr_scale_and_masked_tag() -> None:
    field = make_field(resolution=16, initial_resolution=8, upscale_steps=(1,), grid_lr_scale=7.0)
    before = parameter_tags(field.density_grid).grid_shape
    field.upscale(16)
    assert (
        parameter_tags(field.density_grid).lr_scale
        == parameter_tags(field.feature_grid).lr_scale
        == 7.0
    )
    assert (
        parameter_tags(field.density_grid).masked_updates
        and parameter_tags(field.feature_grid).masked_updates
    )
    # uniform Adam smooths each grid over its vertex shape, kept through upscales
    assert (
        parameter_tags(field.density_grid).grid_shape
        == parameter_tags(field.feature_grid).grid_shape
        == field.shape
    )
    assert math.prod(field.shape) == field.density_grid.shape[0] and before != field.shape
    assert all(parameter_tags(p).lr_scale == 1.0 for p in field.rgb_net.parameters())
    assert all(not parameter_tags(p).masked_updates for p in field.rgb_net.parameters())


def test_dense_gradients_outside_training() -> None:
    field = make_field()
    randomise(field)
    field.eval()
    with torch.enable_grad():
        field(make_samples())["density"].sum().backward()
    assert not field.density_grid.grad.is_sparse and field.density_grid.grad.abs().sum() > 0


def smooth(points: torch.Tensor) -> torch.Tensor:
    """A smooth function of position [N] for upscaling checks."""
    x, y, z = points.unbind(-1)
    return torch.sin(1.5 * x) * torch.cos(y) + 0.5 * z


def test_upscale_preserves_the_field() -> None:
    field = make_field(resolution=48, initial_resolution=24, upscale_steps=(10,))
    verts = grids.vertices(field.low, field.high, field.shape)
    with torch.no_grad():
        field.density_grid.copy_(smooth(verts)[:, None])
        field.feature_grid.copy_(smooth(verts * 0.7)[:, None].expand(-1, 12))
    samples = make_samples(count=256, rays=16, seed=3)
    before = field(samples)
    assert not field.upscale(field.resolution_at(9))
    assert field.upscale(field.resolution_at(10))
    assert field.shape == (48, 48, 48)
    after = field(samples)
    for key in ("density", "rgb"):
        assert torch.allclose(before[key], after[key], atol=2e-3, rtol=1e-3), key


CENTRE = torch.tensor([0.3, -0.2, 0.1])


def blob_field(**options: object) -> VoxelField:
    """A field whose raw density is a Gaussian blob around CENTRE over an empty background."""
    options = {"resolution": 32, "initial_resolution": 16, "upscale_steps": (5, 10), **options}
    field = make_field(**options)
    verts = grids.vertices(field.low, field.high, field.shape)
    with torch.no_grad():
        blob = torch.exp(-(verts - CENTRE).square().sum(-1) / (2 * 0.2**2))
        field.density_grid.copy_((-20 + 30 * blob)[:, None])
        field.feature_grid.copy_(smooth(verts)[:, None].expand(-1, 12))
    return field


def occupied_vertices(field: VoxelField) -> tuple[torch.Tensor, float]:
    """World positions of the vertices above ``box_threshold`` opacity, and the spacing."""
    spacing = 2.0 / (field.shape[0] - 1)
    tau = (
        torch.nn.functional.softplus(field.density_grid[:, 0] + field.shift) * spacing / field.unit
    )
    alpha = 1 - torch.exp(-tau.detach())
    verts = grids.vertices(field.low, field.high, field.shape)
    return verts[alpha > field.box_threshold], spacing


def inside_box(field: VoxelField, count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return field.low + (field.high - field.low) * torch.rand(count, 3, generator=generator)


def test_fit_box_shrinks_around_a_blob_and_keeps_the_field() -> None:
    field = blob_field()
    occupied, spacing = occupied_vertices(field)
    assert 0 < len(occupied) < 100  # a small blob in a 16^3 grid
    points = inside_box(field, 2000)  # in the scene box; compared where the new box reaches
    before = field.lookup(field.density_grid, points)[0].detach()
    features_before = field.lookup(field.feature_grid, points)[0].detach()
    assert not bool(field.fitted)
    assert field.fit_box()
    assert bool(field.fitted)
    # the box holds every occupied vertex plus two coarse voxels of margin (clipped to the scene)
    expected_low = (occupied.amin(0) - 2 * spacing).clamp_min(-1.0)
    expected_high = (occupied.amax(0) + 2 * spacing).clamp_max(1.0)
    assert torch.allclose(field.low, expected_low, atol=1e-5)
    assert torch.allclose(field.high, expected_high, atol=1e-5)
    assert (field.low <= occupied.amin(0) - spacing).all()
    assert (field.high >= occupied.amax(0) + spacing).all()
    assert all(e < 1.0 for e in field.extent)  # much smaller than the 2x2x2 scene box
    # as many vertices along the longest side as before: a finer grid over the blob
    assert max(field.shape) == 16 and field.shape == grids.grid_shape(field.extent, 16)
    assert field.density_grid.shape == (math.prod(field.shape), 1)
    assert (
        parameter_tags(field.density_grid).masked_updates
        and parameter_tags(field.feature_grid).lr_scale == 80.0
    )
    # the field inside the new box is unchanged (up to resampling a trilinear field)
    within = ((points >= field.low) & (points <= field.high)).all(-1)
    assert within.sum() > 5
    # raw density spans 30 units; re-interpolating a sharp blob on a finer grid moves it by
    # under 1.4 (measured), its smooth features by under 0.02
    after = field.lookup(field.density_grid, points)[0].detach()
    features_after = field.lookup(field.feature_grid, points)[0].detach()
    change = (after - before)[within].abs()
    assert change.max() < 1.8 and change.mean() < 0.1
    assert torch.allclose(features_after[within], features_before[within], atol=0.02)
    assert torch.equal(field.density(points[~within]), torch.zeros(int((~within).sum()), 1))


def test_fit_box_reads_the_old_grid_exactly_at_new_vertices() -> None:
    field = blob_field()
    old = blob_field()
    field.fit_box()
    verts = grids.vertices(field.low, field.high, field.shape)
    assert torch.allclose(field.density(verts), old.density(verts), rtol=1e-4, atol=1e-6)


def test_fit_box_on_an_empty_or_full_field_keeps_the_box() -> None:
    empty = blob_field()
    with torch.no_grad():
        empty.density_grid.fill_(-30.0)
    assert not empty.fit_box() and bool(empty.fitted)
    assert empty.extent == (2.0, 2.0, 2.0) and empty.shape == (16, 16, 16)
    full = make_field(resolution=32, initial_resolution=16, upscale_steps=(5,))
    assert not full.fit_box() and bool(full.fitted)  # alpha_init 1e-2 > 1e-3 everywhere
    assert full.extent == (2.0, 2.0, 2.0)


def test_grow_fits_first_then_upscales_once() -> None:
    field = blob_field()
    reference = blob_field()
    reference.fit_box()  # the box a fit on the coarse grid gives
    assert not field.grow(4) and not bool(field.fitted) and field.shape == (16, 16, 16)
    assert field.grow(5)
    assert bool(field.fitted)
    # fitted on the coarse grid (its margin), then upscaled to the second resolution
    assert torch.equal(field.low, reference.low) and torch.equal(field.high, reference.high)
    assert field.resolutions == [16, 23, 32]
    assert field.shape == grids.grid_shape(field.extent, 23) and max(field.shape) == 23
    box = (field.low.clone(), field.high.clone())
    assert not field.grow(7)
    assert field.grow(10)  # the next upscale keeps the fitted box
    assert torch.equal(field.low, box[0]) and torch.equal(field.high, box[1])
    assert max(field.shape) == 32
    assert not field.grow(99)


def test_box_threshold_zero_never_fits() -> None:
    field = blob_field(box_threshold=0.0)
    assert bool(field.fitted)
    assert field.grow(5) and field.grow(10)
    assert field.extent == (2.0, 2.0, 2.0) and field.shape == (32, 32, 32)
    assert torch.equal(field.low, torch.full((3,), -1.0))


def test_state_dict_restores_the_fitted_box_and_grids() -> None:
    trained = blob_field()
    trained.grow(5)
    fresh = blob_field()
    fresh.load_state_dict(trained.state_dict())
    assert bool(fresh.fitted) and fresh.shape == trained.shape
    assert torch.equal(fresh.low, trained.low) and torch.equal(fresh.high, trained.high)
    for name in ("density_grid", "feature_grid"):
        assert torch.equal(getattr(fresh, name), getattr(trained, name))
        assert parameter_tags(getattr(fresh, name)).masked_updates
        assert parameter_tags(getattr(fresh, name)).grid_shape == trained.shape
    samples = make_samples(count=128, rays=16, seed=5)
    assert torch.allclose(fresh(samples)["density"], trained(samples)["density"])
    assert not fresh.grow(5)  # already fitted and at this stage: no second fit


@pytest.mark.parametrize(
    ("space", "expected"), [("box", (160, (50, 100, 150))), ("ndc", (112, (150, 400, 700)))]
)
def test_unset_resolution_and_upscales_follow_the_ray_space(space: str, expected: tuple) -> None:
    """NDC scenes get a coarser grid, upscaled later; options the user sets win."""
    scene = SceneData({}, bounds=BOUNDS, space=space)
    context = BuildContext(RunConfig(), None, scene)
    field = VoxelField(context, initial_resolution=8)
    assert (field.resolutions[-1], field.upscale_steps) == expected
    chosen = VoxelField(context, resolution=12, initial_resolution=8, upscale_steps=(5,))
    assert (chosen.resolutions[-1], chosen.upscale_steps) == (12, (5,))
