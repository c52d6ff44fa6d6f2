"""Carving the warm-up solid with the training rays' median depths (volsdf_grid)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from atlas_plugin_volsdf import SDFGridField, carving, grid_field
from atlas_plugin_volsdf.carving import DepthMap, carve, median_depths

from atlas_core.api import SceneData, Views, look_at
from atlas_core.api import grid as grids

BOUNDS = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def looking_down(eyes: list[tuple[float, float, float]], size: int = 32) -> Views:
    """Views of ``size`` px from ``eyes`` towards the origin (images unused)."""
    c2w = torch.stack(
        [look_at(torch.tensor(eye), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])) for eye in eyes]
    )
    images = torch.zeros(len(eyes), size, size, 4, dtype=torch.uint8)
    return Views(images, c2w, focal=30.0)


def test_median_depth_of_uniform_density_is_log_two_over_sigma() -> None:
    sigma = 4.0
    origins, directions = torch.zeros(3, 3), torch.tensor([[0.0, 0.0, 1.0]] * 3)
    near = torch.tensor([[0.5], [0.5], [0.5]])
    far = torch.tensor([[3.0], [3.0], [0.6]])  # the last ray ends before it is half opaque
    scale = torch.tensor([sigma, sigma * 1e6, sigma])  # one density per ray, by its x offset
    origins[:, 0] = torch.arange(3.0)

    def density(points: torch.Tensor) -> torch.Tensor:
        return scale[points[:, 0].round().long()][:, None]

    depths = median_depths(density, origins, directions, near, far, step=0.01)
    assert float(depths[0]) == pytest.approx(0.5 + math.log(2) / sigma, abs=1e-4)
    assert float(depths[1]) == pytest.approx(0.5, abs=1e-4)  # opaque at once
    assert math.isinf(float(depths[2]))


def test_a_view_carves_what_lies_in_front_of_its_depths() -> None:
    views = looking_down([(0.0, 0.0, 3.0)])
    depths = torch.full((32, 32), 3.0)  # a floor through the origin's height, seen face-on
    depth_map = DepthMap(views, 0, 1, depths, tolerance=0.04)
    column = np.array([[0.0, 0.0, z] for z in (0.5, 0.1, -0.1, -0.5)])
    assert depth_map.in_front(column).tolist() == [True, True, False, False]
    solid = np.ones(4, dtype=bool)
    assert carve(solid, column, [depth_map], 1, 0.1).tolist() == [False, False, True, True]
    assert carve(solid, column, [depth_map], 2, 0.1).all()  # one view is not enough
    beside = np.array([[5.0, 0.0, 0.0]])  # outside the frame: no vote
    assert not depth_map.in_front(beside).any()


def test_a_minority_of_the_observing_views_does_not_carve() -> None:
    views = looking_down([(0.0, 0.0, 3.0)])
    point = np.array([[0.0, 0.0, -0.2]])  # 3.2 from the camera
    through = DepthMap(views, 0, 1, torch.full((32, 32), 3.5), tolerance=0.04)
    stopped = DepthMap(views, 0, 1, torch.full((32, 32), 3.0), tolerance=0.04)
    solid = np.ones(1, dtype=bool)
    assert carve(solid, point, [through] * 3 + [stopped] * 10, 3, 0.3).all()  # 3 of 13
    assert not carve(solid, point, [through] * 3 + [stopped] * 9, 3, 0.3).any()  # 3 of 12
    assert not carve(solid, point, [through] * 3 + [stopped] * 10, 3, 0.1).any()  # 3 of 3


def test_the_automatic_stride_keeps_to_the_ray_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    views = looking_down([(0.0, 0.0, 3.0), (1.0, 0.0, 3.0)])
    scene = SceneData({"train": views}, near=0.1, far=10.0, bounds=BOUNDS)
    empty = lambda points: torch.zeros(len(points), 1)  # noqa: E731
    monkeypatch.setattr(carving, "RAYS", 230)  # 2 views of 32x32 at stride 3: 242 rays
    maps = carving.depth_maps(empty, views, scene, 0.1, 0, torch.device("cpu"))
    assert [m.stride for m in maps] == [3, 3] and maps[0].depths.shape == (11, 11)
    assert np.isinf(maps[0].depths).all()
    assert carving.depth_maps(empty, views, scene, 0.1, 2, torch.device("cpu"))[0].stride == 2


def test_occlusion_edges_are_not_carved_behind_the_edge() -> None:
    views = looking_down([(0.0, 0.0, 3.0)])
    depths = torch.full((32, 32), 4.0)
    depths[:, :16] = 2.0  # a near box edge: columns 0-15 see depth 2, the rest depth 4
    depth_map = DepthMap(views, 0, 1, depths, tolerance=0.04)
    # just across the edge, a point at distance 3 lies behind the near surface's depth
    u = 16.1  # pixel coordinate, between lattice columns 15 and 16
    x = (u - 16.0) / 30.0 * 3.0
    assert not depth_map.in_front(np.array([[x, 0.0, 0.0]])).any()


def haze_over_slab(carve_views: int, **options: object) -> SDFGridField:
    """A grid field whose warm-up density is an opaque slab under a faint haze layer,
    converted to its SDF with five cameras looking down."""
    eyes = [(0.0, 0.0, 3.0), (1.0, 0.0, 3.0), (-1.0, 0.0, 3.0), (0.0, 1.0, 3.0), (0.0, -1.0, 3.0)]
    scene = SceneData({"train": looking_down(eyes)}, near=0.1, far=10.0, bounds=BOUNDS)
    field = SDFGridField(
        SimpleNamespace(scene=scene),
        resolution=33,
        initial_resolution=33,
        upscale_steps=(),
        init="density",
        warmup_steps=1,
        blur=0.0,
        opacity_blur=0.0,
        smooth=0,
        carve_views=carve_views,
        **options,
    )
    z = grids.vertices(field.low, field.high, field.shape)[:, 2]
    opacity = torch.where(z <= -0.25, 0.999, torch.where(z <= -0.18, 0.3, 0.0))
    optical = -torch.log1p(-opacity)  # per voxel; raw = softplus^-1(optical) - shift
    raw = torch.where(optical > 0, torch.log(torch.expm1(optical.clamp_min(1e-6))), -20.0)
    with torch.no_grad():
        field.sdf_grid.copy_((raw - field.shift)[:, None])
    assert field.grow(1) and bool(field.is_sdf)
    return field


def test_carving_trims_a_haze_that_rays_see_through() -> None:
    haze = torch.tensor([[0.0, 0.0, -0.17]])  # above the haze vertices, below the next
    deep = torch.tensor([[0.0, 0.0, -0.5]])
    plain, carved = haze_over_slab(0), haze_over_slab(3)
    with torch.no_grad():
        assert float(plain.sdf(haze)) < 0  # the opacity threshold keeps the haze as solid
        assert float(carved.sdf(haze)) > 0  # the rays see through it to the slab
        assert float(carved.sdf(deep)) < 0 and float(plain.sdf(deep)) < 0


def test_the_field_carves_on_its_stride(monkeypatch: pytest.MonkeyPatch) -> None:
    strides = []

    def recording(*args: object) -> list[DepthMap]:
        maps = carving.depth_maps(*args)
        strides.append([m.stride for m in maps])
        return maps

    monkeypatch.setattr(grid_field, "depth_maps", recording)
    haze_over_slab(3, carve_stride=4)
    haze_over_slab(3)  # 0: five 32x32 views are under the ray budget, every pixel
    assert strides == [[4] * 5, [1] * 5]


def test_carving_options_are_checked() -> None:
    context = SimpleNamespace(scene=SimpleNamespace(bounds=BOUNDS))
    with pytest.raises(ValueError, match="carve"):
        SDFGridField(context, carve_views=-1)
    with pytest.raises(ValueError, match="carve"):
        SDFGridField(context, carve_stride=-1)
