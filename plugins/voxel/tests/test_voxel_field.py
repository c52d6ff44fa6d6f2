"""VoxelField: outputs, gradients, the density activation, options, progressive upscaling."""

from __future__ import annotations

import math

import pytest
import torch
from atlas_plugin_voxel.field import VoxelField, grid_shape, schedule

from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.errors import ConfigError
from atlas_core.pipeline import BuildContext
from atlas_core.rays import RayBundle, RaySamples

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
    assert field.feature_grid.shape == (expected, 16, 16, 16)


@pytest.mark.parametrize("color", ["mlp", "sh"])
def test_finite_gradients_reach_grids_and_mlp(color: str) -> None:
    field = make_field(color=color)
    randomise(field)
    out = field(make_samples())
    (out["density"].sum() + out["rgb"].sum()).backward()
    params = dict(field.named_parameters())
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
    assert grid_shape((2.0, 2.0, 2.0), 16) == (16, 16, 16)
    assert grid_shape((2.0, 1.0, 0.5), 17) == (17, 9, 5)
    field = make_field(
        bounds=(-1.0, -0.5, 0.0, 1.0, 0.5, 0.5), resolution=17, initial_resolution=17
    )
    assert field.shape == (17, 9, 5)


def test_schedule_and_resolution_at() -> None:
    assert schedule(16, 16, 0) == [16]
    assert schedule(16, 128, 3) == [16, 32, 64, 128]
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
    ],
)
def test_bad_options_are_rejected(options: dict) -> None:
    with pytest.raises(ValueError):
        make_field(**options)


def test_options_are_config_keys(atlas_pm) -> None:  # noqa: ANN001
    import atlas_plugin_voxel

    from atlas_core.pipeline import Pipeline

    config = RunConfig()
    config.set("field", "voxel")
    for key, value in {"field.resolution": 12, "field.initial_resolution": 6,
                       "field.upscale_steps": [3], "field.color": "sh"}.items():  # fmt: skip
        config.set(key, value)
    pipeline = Pipeline(BuildContext(config, atlas_pm(atlas_plugin_voxel), SceneData({})))
    assert pipeline.field.shape == (6, 6, 6) and pipeline.field.resolutions == [6, 12]
    assert pipeline.field.feature_grid.shape[0] == 27
    config.set("field.color", "rgb")
    with pytest.raises(ConfigError, match="field.color"):
        Pipeline(BuildContext(config, atlas_pm(atlas_plugin_voxel), SceneData({})))


def test_grids_carry_their_lr_scale() -> None:
    field = make_field(resolution=16, initial_resolution=8, upscale_steps=(1,), grid_lr_scale=7.0)
    field.upscale(16)
    assert field.density_grid.lr_scale == field.feature_grid.lr_scale == 7.0
    assert all(not hasattr(p, "lr_scale") for p in field.rgb_net.parameters())


def smooth(points: torch.Tensor) -> torch.Tensor:
    """A smooth function of position [N] for upscaling checks."""
    x, y, z = points.unbind(-1)
    return torch.sin(1.5 * x) * torch.cos(y) + 0.5 * z


def test_upscale_preserves_the_field() -> None:
    field = make_field(resolution=48, initial_resolution=24, upscale_steps=(10,))
    axis = torch.linspace(-1, 1, 24)
    verts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    with torch.no_grad():
        field.density_grid.copy_(smooth(verts).view(1, 24, 24, 24))
        field.feature_grid.copy_(smooth(verts * 0.7).expand(12, -1).reshape(12, 24, 24, 24))
    samples = make_samples(count=256, rays=16, seed=3)
    before = field(samples)
    assert not field.upscale(field.resolution_at(9))
    assert field.upscale(field.resolution_at(10))
    assert field.shape == (48, 48, 48)
    after = field(samples)
    for key in ("density", "rgb"):
        assert torch.allclose(before[key], after[key], atol=2e-3, rtol=1e-3), key
