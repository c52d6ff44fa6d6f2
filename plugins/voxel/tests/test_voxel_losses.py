"""Total-variation losses: values, sampling, weights, and how they find the field."""

from __future__ import annotations

import atlas_plugin_voxel
import pytest
import torch
from atlas_plugin_voxel.losses import DensityTVLoss, find_voxel_field, total_variation
from torch import nn

from atlas_core.api import BuildContext, Pipeline, RunConfig, SceneData
from atlas_core.api import grid as grids


def test_tv_is_zero_for_a_constant_grid_and_positive_otherwise() -> None:
    shape = (6, 7, 8)
    constant = torch.full((6 * 7 * 8, 3), 2.5)
    assert total_variation(constant, shape) == 0
    assert total_variation(constant, shape, voxels=20) == 0
    bumped = constant.clone()
    bumped[(3 * 7 + 3) * 8 + 3, 1] += 1.0
    # the bump differs from its three lower neighbours and is one base voxel itself:
    # 3 + 3 differences of 1 among (5 * 6 * 7) voxels and 3 channels
    assert torch.isclose(total_variation(bumped, shape), torch.tensor(6 / (5 * 6 * 7 * 3)))


def test_tv_value_of_a_ramp() -> None:
    # f = 2x (in voxel steps): squared x-difference 4 everywhere, others 0
    ramp = grids.from_volume((2.0 * torch.arange(5.0))[:, None, None].expand(5, 4, 3)[None])
    assert ramp.shape == (60, 1)
    assert torch.isclose(total_variation(ramp, (5, 4, 3)), torch.tensor(4.0))
    assert torch.isclose(total_variation(ramp, (5, 4, 3), voxels=7), torch.tensor(4.0))
    # along z instead: a grid is read in its own (X, Y, Z) layout
    ramp_z = grids.from_volume((2.0 * torch.arange(5.0)).expand(1, 3, 4, 5))
    assert torch.isclose(total_variation(ramp_z, (3, 4, 5)), torch.tensor(4.0))


def test_sampled_tv_estimates_full_tv() -> None:
    torch.manual_seed(0)
    shape = (20, 20, 20)
    grid = torch.randn(20**3, 2)
    full = total_variation(grid, shape)
    estimates = torch.stack([total_variation(grid, shape, voxels=2000) for _ in range(20)])
    assert torch.isclose(estimates.mean(), full, rtol=0.02)
    assert total_variation(grid, shape, voxels=10**6) == full  # more voxels than the grid: exact


def test_sampled_tv_sparse_gradient_matches_dense() -> None:
    shape = (9, 8, 7)
    grid = torch.randn(9 * 8 * 7, 3, dtype=torch.float64, requires_grad=True)
    grads = []
    for sparse in (False, True):
        torch.manual_seed(1)  # the same random voxels
        total_variation(grid, shape, voxels=30, sparse=sparse).backward()
        grads.append(grid.grad)
        grid.grad = None
    assert not grads[0].is_sparse and grads[1].is_sparse
    assert torch.allclose(grads[1].to_dense(), grads[0]) and grads[0].abs().sum() > 0
    touched = grads[1].coalesce().indices()[0].unique()
    assert len(touched) <= 30 * 4 < grid.shape[0]  # only the sampled voxels and neighbours


def build(atlas_pm, **sets: object) -> Pipeline:  # noqa: ANN001
    config = RunConfig()
    for key, value in sets.items():
        config.set(key.replace("__", "."), value)
    return Pipeline(BuildContext(config, atlas_pm(atlas_plugin_voxel), SceneData({})))


def test_weighted_terms_in_the_pipeline(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(
        atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
        field__upscale_steps=[], losses__tv_density=0.5, losses__tv_color=2.0,
    )  # fmt: skip
    field = pipeline.field
    with torch.no_grad():
        field.density_grid.view(8, 8, 8, 1)[4] += 1.0  # the slab x = 4
        field.feature_grid.view(8, 8, 8, -1)[:, 2] -= 3.0  # the slab y = 2
    for name in ("tv_density", "tv_color"):
        pipeline.losses[name].every = 1  # a gradient on every call
    rays = None  # TV terms do not look at the batch
    outputs = {"rgb": torch.zeros(4, 3), "target_rgb": torch.zeros(4, 3)}
    total, terms = pipeline.loss(rays, outputs, {})
    assert terms["tv_density"] == total_variation(field.density_grid, field.shape) > 0
    assert terms["tv_color"] == total_variation(field.feature_grid, field.shape) > 0
    expected = terms["rgb_l2"] + 0.5 * terms["tv_density"] + 2.0 * terms["tv_color"]
    assert torch.isclose(total, expected)
    total.backward()
    for grid in (field.density_grid, field.feature_grid):
        assert grid.grad.to_dense().abs().sum() > 0


def test_losses_do_not_own_the_field_parameters(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
                     field__upscale_steps=[], losses__tv_density=1.0)  # fmt: skip
    assert list(pipeline.losses.parameters()) == []
    names = [name for name, _ in pipeline.named_parameters()]
    assert len(names) == len(set(id(p) for p in pipeline.parameters()))
    assert "field.density_grid" in names


def test_zero_weight_term_is_not_computed(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
                     field__upscale_steps=[], losses__tv_density=0.0)  # fmt: skip
    with torch.no_grad():
        pipeline.field.density_grid.view(8, 8, 8, 1)[4] += 1.0
    term = pipeline.losses["tv_density"](None, {}, {})
    assert term == 0 and not term.requires_grad


def test_finds_a_wrapped_field_and_reports_a_missing_one(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
                     field__upscale_steps=[])  # fmt: skip
    wrapper = nn.Sequential(nn.Linear(2, 2), pipeline.field)
    assert find_voxel_field(wrapper) is pipeline.field
    with pytest.raises(ValueError, match="holds no voxel grid.*field=voxel"):
        find_voxel_field(nn.Linear(2, 2))
    context = BuildContext(RunConfig(), None, SceneData({}), field=nn.Linear(2, 2))
    with pytest.raises(ValueError, match="holds no voxel grid"):
        DensityTVLoss(context)


def test_gradient_every_few_calls_scaled_to_match(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
                     field__upscale_steps=[], losses__tv_color=1.0)  # fmt: skip
    grid = pipeline.field.feature_grid
    with torch.no_grad():
        grid.normal_()
    shape = pipeline.field.shape
    expected = torch.autograd.grad(total_variation(grid, shape), grid)[0]
    loss = pipeline.losses["tv_color"]
    assert loss.every == 1  # the default: a gradient on every call
    loss.every = 4
    graphs = []
    for _ in range(8):
        value = loss(None, {}, {})
        assert torch.isclose(value, total_variation(grid, shape))  # the value, every call
        graphs.append(value.requires_grad)
        if value.requires_grad:
            assert torch.allclose(torch.autograd.grad(value, grid)[0], 4 * expected)
    assert graphs == [False, False, False, True] * 2
    pipeline.eval()  # outside training: the plain term, uncounted
    value = loss(None, {}, {})
    assert loss.calls == 8 and torch.allclose(torch.autograd.grad(value, grid)[0], expected)


def test_sampled_term_gives_sparse_gradients_while_training(atlas_pm) -> None:  # noqa: ANN001
    pipeline = build(atlas_pm, field="voxel", field__resolution=8, field__initial_resolution=8,
                     field__upscale_steps=[], losses__tv_density=1.0)  # fmt: skip
    grid = pipeline.field.density_grid
    with torch.no_grad():
        grid.normal_()
    loss = pipeline.losses["tv_density"]
    loss.voxels = 40  # fewer than the 7^3 voxels: the sampled estimate
    assert loss.training and loss.every == 1
    (gradient,) = torch.autograd.grad(loss(None, {}, {}), grid)
    assert gradient.is_sparse and gradient.to_dense().abs().sum() > 0
    assert len(gradient.coalesce().indices()[0].unique()) <= 40 * 4
    pipeline.eval()
    (gradient,) = torch.autograd.grad(loss(None, {}, {}), grid)
    assert not gradient.is_sparse
