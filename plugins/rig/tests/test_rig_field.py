"""RigField: outputs, density(), gradients, every option, validation, checkpoints."""

from __future__ import annotations

import atlas_plugin_rig
import pytest
import torch
from atlas_plugin_rig import RigField
from atlas_plugin_rig.field import GEOMETRY
from atlas_plugin_rig.layout import grid_counts
from torch import nn

from atlas_core.api import BuildContext, ConfigError, Pipeline, RunConfig, SceneData, parameter_tags


def linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_output_shapes_and_ranges(make_rig, ray_samples) -> None:  # noqa: ANN001
    field = make_rig()
    samples = ray_samples()
    out = field(samples)
    assert out["density"].shape == (256, 1) and out["rgb"].shape == (256, 3)
    assert bool((out["density"] >= 0).all()) and bool(((out["rgb"] > 0) & (out["rgb"] < 1)).all())
    assert field.positions.shape == (512, 3) and field.features.shape == (512, 4)


@pytest.mark.parametrize("training", [True, False])
def test_density_agrees_with_the_forward_pass(make_rig, ray_samples, training: bool) -> None:  # noqa: ANN001
    field = make_rig(neighbours=6)
    field.train(training)
    samples = ray_samples(count=512, rays=32, seed=4)
    forward = field(samples)["density"]
    queried = field.density(samples.positions)
    assert torch.allclose(queried, forward, rtol=1e-6, atol=1e-7)
    times = torch.rand(len(queried), 1)
    assert torch.allclose(field.density(samples.positions, times), forward, rtol=1e-6, atol=1e-7)
    assert float(forward.detach().std()) > 0  # not a constant: the comparison means something


def test_gradients_reach_features_positions_and_samples(make_rig, ray_samples) -> None:  # noqa: ANN001
    field = make_rig()
    samples = ray_samples()
    out = field(samples)
    (out["density"].sum() + out["rgb"].sum()).backward()
    features = field.features.grad
    assert features.is_sparse  # training: only the rows the samples touched
    assert float(features.to_dense().abs().sum()) > 0
    assert float(field.positions.grad.abs().sum()) > 0  # the weights depend on |x - p_i|
    assert all(p.grad is not None for p in field.density_net.parameters())
    x = samples.positions.detach().requires_grad_()
    field.eval()
    field.density(x).sum().backward()
    assert float(x.grad.abs().sum()) > 0  # a deformation upstream can learn
    assert not field.features.grad.is_sparse  # outside training: dense


def test_points_option_sets_the_count_and_spreads_them_over_the_box(make_rig) -> None:  # noqa: ANN001
    bounds = (-2.0, -1.0, 0.0, 2.0, 1.0, 0.5)
    field = make_rig(bounds=bounds, points=300)
    positions = field.positions.detach()
    assert positions.shape == (300, 3) and field.features.shape[0] == 300
    assert bool((positions >= torch.tensor(bounds[:3])).all())
    assert bool((positions <= torch.tensor(bounds[3:])).all())
    # spread out: every eighth of the box holds some points
    octant = ((positions - torch.tensor([0.0, 0.0, 0.25])) > 0).long()
    assert len({tuple(o) for o in octant.tolist()}) == 8


def test_grid_layout_puts_at_most_one_point_in_each_lattice_cell(make_rig) -> None:  # noqa: ANN001
    for points in (512, 450):
        field = make_rig(points=points, layout="grid")
        counts = grid_counts((2.0, 2.0, 2.0), points)
        assert counts == (8, 8, 8)
        cell = ((field.positions.detach() + 1.0) / 2.0 * torch.tensor(counts)).long()
        assert len({tuple(c) for c in cell.tolist()}) == points


def test_random_layout_is_uniform_not_a_lattice(make_rig) -> None:  # noqa: ANN001
    grid = make_rig(layout="grid").positions.detach()
    uniform = make_rig(layout="random").positions.detach()
    assert not torch.equal(grid, uniform)
    cell = ((uniform + 1.0) / 2.0 * 8).long()
    assert len({tuple(c) for c in cell.tolist()}) < 512  # uniform points share cells


def test_the_run_seed_places_the_points(make_rig) -> None:  # noqa: ANN001
    first, again, other = make_rig(seed=0), make_rig(seed=0), make_rig(seed=1)
    assert torch.equal(first.positions, again.positions)
    assert torch.equal(first.features, again.features)
    assert not torch.equal(first.positions, other.positions)


def test_neighbours_option_sets_k(make_rig) -> None:  # noqa: ANN001
    """With k = 1 a sample on a point takes exactly that point's features; with more
    neighbours the others weigh in."""
    one = make_rig(neighbours=1)
    four = make_rig(neighbours=4)
    on_points = one.positions.detach()[:50]
    features, covered = one.point_features(on_points)
    assert torch.equal(features, one.features.detach()[:50]) and bool(covered.all())
    mixed, _ = four.point_features(on_points)
    assert not torch.allclose(mixed, four.features.detach()[:50], atol=1e-4)
    found = four.bucket().query(on_points, four.neighbours)
    assert found.index.shape == (50, 4)


def test_features_width_and_depth_shape_the_networks(make_rig) -> None:  # noqa: ANN001
    field = make_rig(features=6, width=24, depth=3)
    layers = linears(field.density_net)
    assert field.features.shape == (512, 6) and layers[0].in_features == 6
    assert len(layers) == 4 and all(layer.out_features == 24 for layer in layers[:-1])
    assert layers[-1].out_features == 1 + GEOMETRY
    assert linears(field.rgb_net)[0].out_features == 24


def test_view_dependent_colour(make_rig, ray_samples) -> None:  # noqa: ANN001
    samples = ray_samples(count=64, rays=4)
    flipped = ray_samples(count=64, rays=4, seed=5).with_positions(samples.positions)
    assert not torch.allclose(flipped.directions, samples.directions)
    dependent = make_rig(view_dependent=True)
    assert not torch.allclose(dependent(samples)["rgb"], dependent(flipped)["rgb"])
    independent = make_rig(view_dependent=False)
    assert torch.allclose(independent(samples)["rgb"], independent(flipped)["rgb"], atol=1e-5)
    assert not hasattr(independent, "dir_encoding")


def test_dir_frequencies_set_the_direction_encoding(make_rig) -> None:  # noqa: ANN001
    for frequencies in (0, 2, 5):
        field = make_rig(dir_frequencies=frequencies)
        expected = GEOMETRY + 3 + 6 * frequencies
        assert linears(field.rgb_net)[0].in_features == expected


def test_step_becomes_the_occupancy_samplers_step(atlas_pm) -> None:  # noqa: ANN001
    for step in (0.5, 1.25):
        config = RunConfig()
        config.set("field", "rig")
        config.set("field.points", 512)
        config.set("field.step", step)
        config.set("sampler", "occupancy")
        config.set("sampler.resolution", 8)
        scene = SceneData({}, bounds=(-1.0, -1.0, -1.0, 1.0, 1.0, 1.0))
        pipeline = Pipeline(BuildContext(config, atlas_pm(atlas_plugin_rig), scene))
        spacing = 2.0 / 8  # 512 points in a 2 x 2 x 2 box
        assert pipeline.field.sample_step == pytest.approx(step * spacing)
        assert pipeline.sampler.step_size == pytest.approx(step * spacing)


def test_learning_rate_tags(make_rig) -> None:  # noqa: ANN001
    field = make_rig(feature_lr_scale=7.0, position_lr_scale=0.25)
    assert parameter_tags(field.features).lr_scale == 7.0
    assert parameter_tags(field.features).masked_updates
    assert parameter_tags(field.positions).lr_scale == 0.25
    assert not parameter_tags(field.positions).masked_updates
    for param in [*field.density_net.parameters(), *field.rgb_net.parameters()]:
        assert parameter_tags(param).lr_scale == 1.0
    assert "lr_scale" not in vars(field.features) and "lr_scale" not in vars(field.positions)


def test_position_lr_scale_zero_keeps_the_points_still(make_rig, ray_samples) -> None:  # noqa: ANN001
    field = make_rig(position_lr_scale=0.0)
    assert not field.positions.requires_grad
    field(ray_samples())["density"].sum().backward()
    assert field.positions.grad is None and field.features.grad is not None


def test_moved_points_are_found(make_rig, ray_samples) -> None:  # noqa: ANN001
    """Points that leave their cells, or the box, are still searched where they are."""
    field = make_rig()
    samples = ray_samples()
    with torch.no_grad():
        field.positions.mul_(1.3)  # a quarter of them beyond the box
    out = field(samples)
    assert bool(torch.isfinite(out["density"]).all()) and bool(torch.isfinite(out["rgb"]).all())
    corner = torch.tensor([[1.25, 1.25, 1.25]])
    features, covered = field.point_features(corner)
    assert bool(covered.all())


def test_no_point_nearby_is_empty_space(make_rig) -> None:  # noqa: ANN001
    field = make_rig()
    with torch.no_grad():
        field.positions.copy_(torch.full_like(field.positions, -0.95))  # all in one corner
    far = torch.tensor([[0.9, 0.9, 0.9], [0.0, 0.5, 0.9]])
    assert torch.equal(field.density(far), torch.zeros(2, 1))
    assert float(field.density(torch.tensor([[-0.9, -0.9, -0.9]])).detach()) > 0


def test_state_dict_round_trip(make_rig, ray_samples) -> None:  # noqa: ANN001
    trained = make_rig(seed=3)
    with torch.no_grad():
        trained.positions.add_(0.05)
    fresh = make_rig(seed=9)
    fresh.load_state_dict(trained.state_dict())
    samples = ray_samples()
    assert torch.equal(fresh(samples)["rgb"], trained(samples)["rgb"])


@pytest.mark.parametrize(
    "options",
    [
        {"points": 0},
        {"features": 0},
        {"neighbours": 0},
        {"neighbours": 17},
        {"points": 3, "neighbours": 4},
        {"layout": "hex"},
        {"width": 0},
        {"depth": 0},
        {"dir_frequencies": -1},
        {"step": 0.0},
        {"feature_lr_scale": 0.0},
        {"position_lr_scale": -1.0},
        {"position_lr_scale": float("inf")},
    ],
)
def test_bad_options_are_rejected(make_rig, options: dict) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        make_rig(**options)


def test_empty_scene_box_is_rejected(make_rig) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="no volume"):
        make_rig(bounds=(0.0, 0.0, 0.0, 1.0, 0.0, 1.0))


def test_options_are_config_keys(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    config.set("field", "rig")
    config.set("sampler", "stratified")
    for key, value in {"field.points": 100, "field.features": 3, "field.layout": "random",
                       "field.view_dependent": False}.items():  # fmt: skip
        config.set(key, value)
    pipeline = Pipeline(BuildContext(config, atlas_pm(atlas_plugin_rig), SceneData({})))
    field = pipeline.field
    assert isinstance(field, RigField) and field.features.shape == (100, 3)
    assert not field.view_dependent
    config.set("field.neighbours", 40)
    with pytest.raises(ConfigError, match="neighbours must be at most 16"):
        Pipeline(BuildContext(config, atlas_pm(atlas_plugin_rig), SceneData({})))
