"""Trilinear interpolation of channels-last grids: exactness, linearity, the box, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from atlas_core.nerf.grid import (
    blur,
    corners,
    from_volume,
    gradient,
    interpolate,
    resample,
    to_volume,
    trilinear,
    vertices,
    weighted_rows,
)

LOW = torch.tensor([-1.0, -2.0, 0.0], dtype=torch.float64)
HIGH = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
SHAPE = (5, 6, 7)
VOXELS = 5 * 6 * 7


def inside_points(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return LOW + (HIGH - LOW) * torch.rand(count, 3, generator=generator, dtype=torch.float64)


COEFFICIENTS = torch.tensor([[2.0, -3.0, 0.5], [-1.0, 0.0, 4.0]], dtype=torch.float64)


def linear(points: torch.Tensor) -> torch.Tensor:
    """Two channels of affine functions of position [N, 2]."""
    return points @ COEFFICIENTS.t() + torch.tensor([1.0, 0.0], dtype=torch.float64)


def test_vertices_are_in_flat_index_order() -> None:
    points = vertices(LOW, HIGH, SHAPE)
    assert points.shape == (VOXELS, 3)
    assert torch.allclose(points[0], LOW) and torch.allclose(points[-1], HIGH)
    # flat index (i * Y + j) * Z + k: the last axis varies fastest
    i, j, k = 2, 3, 4
    expected = LOW + (HIGH - LOW) * torch.tensor([i / 4, j / 5, k / 6], dtype=torch.float64)
    assert torch.allclose(points[(i * 6 + j) * 7 + k], expected)


def test_exact_at_vertices() -> None:
    grid = torch.randn(VOXELS, 3, dtype=torch.float64)
    values = trilinear(grid, SHAPE, vertices(LOW, HIGH, SHAPE), LOW, HIGH)
    assert torch.allclose(values, grid, atol=1e-12)


def test_exact_at_cell_centres_and_linear_between() -> None:
    # a grid holding an affine function is reproduced exactly everywhere inside
    grid = linear(vertices(LOW, HIGH, SHAPE))
    points = inside_points(500)
    assert torch.allclose(trilinear(grid, SHAPE, points, LOW, HIGH), linear(points), atol=1e-10)
    # the centre of a cell is the mean of its eight corners
    cell = torch.randn(8, 1, dtype=torch.float64)
    centre = ((LOW + HIGH) / 2)[None]
    assert torch.allclose(trilinear(cell, (2, 2, 2), centre, LOW, HIGH)[0, 0], cell.mean())
    # along an x edge the value moves linearly from vertex (0,0,0) (row 0) to (1,0,0) (row 4)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    edge = LOW + t[:, None] * torch.tensor([HIGH[0] - LOW[0], 0, 0], dtype=torch.float64)
    expected = cell[0, 0] + t * (cell[4, 0] - cell[0, 0])
    assert torch.allclose(trilinear(cell, (2, 2, 2), edge, LOW, HIGH)[:, 0], expected)


def test_matches_grid_sample_align_corners() -> None:
    grid = torch.randn(VOXELS, 4, dtype=torch.float64)
    points = inside_points(300)
    unit = (points - LOW) / (HIGH - LOW) * 2 - 1
    volume = to_volume(grid, SHAPE)[None]  # [1, C, X, Y, Z]: grid_sample reads (z, y, x)
    ref = F.grid_sample(volume, unit.flip(-1).view(1, 1, 1, -1, 3), align_corners=True)
    ours = trilinear(grid, SHAPE, points, LOW, HIGH)
    assert torch.allclose(ours, ref.view(4, -1).t(), atol=1e-12)


def test_volume_round_trip() -> None:
    grid = torch.randn(VOXELS, 3, dtype=torch.float64)
    volume = to_volume(grid, SHAPE)
    assert volume.shape == (3, *SHAPE)
    assert volume[1, 2, 3, 4] == grid[(2 * 6 + 3) * 7 + 4, 1]
    back = from_volume(volume)
    assert back.is_contiguous() and torch.equal(back, grid)


def test_outside_the_box_reads_zero() -> None:
    grid = torch.full((VOXELS, 2), 7.0, dtype=torch.float64)
    points = torch.tensor(
        [[-1.01, 0, 1], [1.01, 0, 1], [0, -2.5, 1], [0, 2.01, 1], [0, 0, -0.1], [0, 0, 3.2]],
        dtype=torch.float64,
    )
    at = corners(points, LOW, HIGH, SHAPE)
    assert not at.inside.any() and at.num_voxels == VOXELS
    assert (at.index >= 0).all() and (at.index < VOXELS).all()  # clamped, safe to gather
    assert torch.equal(interpolate(grid, at), torch.zeros(6, 2, dtype=torch.float64))
    # the faces of the box are inside and read the grid
    faces = torch.stack([LOW, HIGH])
    assert torch.allclose(
        trilinear(grid, SHAPE, faces, LOW, HIGH), torch.full((2, 2), 7.0).double()
    )


def test_sparse_and_dense_gradients_agree() -> None:
    grid = torch.randn(VOXELS, 3, dtype=torch.float64, requires_grad=True)
    points = torch.cat([inside_points(40), LOW[None] - 1])  # one outside point too
    at = corners(points, LOW, HIGH, SHAPE)
    weights = torch.randn(len(points), 3, dtype=torch.float64)
    values, grads = [], []
    for sparse in (False, True):
        out = interpolate(grid, at, sparse=sparse)
        (out * weights).sum().backward()
        values.append(out.detach())
        grads.append(grid.grad)
        grid.grad = None
    dense, sparse = grads
    assert not dense.is_sparse and sparse.is_sparse
    assert torch.equal(values[0], values[1])
    assert torch.allclose(sparse.to_dense(), dense, atol=1e-12)
    # the sparse gradient holds only rows the batch touched, not the whole grid
    touched = set(sparse.coalesce().indices()[0].tolist())
    assert touched <= set(at.index.reshape(-1).tolist()) and len(touched) < VOXELS
    assert dense.abs().sum() > 0


def test_gradcheck() -> None:
    grid = torch.randn(3 * 4 * 3, 2, dtype=torch.float64, requires_grad=True)
    at = corners(inside_points(20, seed=1), LOW, HIGH, (3, 4, 3))
    assert torch.autograd.gradcheck(lambda g: interpolate(g, at), (grid,))


def test_dense_gradients_reach_the_grid_and_the_weights_as_embedding_bag_gives_them() -> None:
    # a smoothed (non-leaf) grid takes the scattered backward: same values and gradients
    generator = torch.Generator().manual_seed(4)
    grid = torch.randn(VOXELS, 2, dtype=torch.float64, generator=generator, requires_grad=True)
    index = torch.randint(0, VOXELS, (25, 8), generator=generator)
    weights = torch.rand(25, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    ours = weighted_rows(grid * 1.0, index, weights)
    theirs = F.embedding_bag(index, grid * 1.0, per_sample_weights=weights, mode="sum")
    assert torch.equal(ours, theirs)
    assert type(ours.grad_fn).__name__ == "_DenseBagBackward"  # the scatter, not the sort
    probe = torch.randn(25, 2, dtype=torch.float64, generator=generator)
    mine = torch.autograd.grad((ours * probe).sum(), (grid, weights))
    reference = torch.autograd.grad((theirs * probe).sum(), (grid, weights))
    for a, b in zip(mine, reference, strict=True):
        assert torch.allclose(a, b, atol=1e-12) and a.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda g, w: weighted_rows(g, index, w), (grid, weights))


def test_positions_receive_gradients_through_the_weights() -> None:
    # an affine grid: the gradient with respect to a position is the affine map's matrix
    grid = linear(vertices(LOW, HIGH, SHAPE))
    points = inside_points(30, seed=2).requires_grad_()
    out = trilinear(grid, SHAPE, points, LOW, HIGH)
    for channel in range(2):
        (grad,) = torch.autograd.grad(out[:, channel].sum(), points, retain_graph=True)
        assert torch.allclose(grad, COEFFICIENTS[channel].expand(30, 3), atol=1e-10)
    # and for a random grid the analytic gradient matches finite differences
    random = torch.randn(VOXELS, 2, dtype=torch.float64)
    inner = inside_points(10, seed=3).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: trilinear(random, SHAPE, p, LOW, HIGH), (inner,))


def test_shape_mismatch_is_an_error() -> None:
    at = corners(inside_points(3), LOW, HIGH, SHAPE)
    with pytest.raises(ValueError, match="does not match"):
        interpolate(torch.zeros(4 * 4 * 4, 1, dtype=torch.float64), at)
    with pytest.raises(ValueError, match="does not match"):
        interpolate(torch.zeros(VOXELS, dtype=torch.float64), at)


def test_resample_keeps_affine_functions_and_vertices() -> None:
    new = (9, 11, 13)
    grid = linear(vertices(LOW, HIGH, SHAPE))
    bigger = resample(grid, SHAPE, new)
    assert bigger.shape == (9 * 11 * 13, 2) and bigger.is_contiguous()
    assert torch.allclose(bigger, linear(vertices(LOW, HIGH, new)))
    # doubling minus one puts every old vertex on a new one
    random = torch.randn(VOXELS, 1, dtype=torch.float64)
    every_other = to_volume(resample(random, SHAPE, new), new)[:, ::2, ::2, ::2]
    assert torch.allclose(every_other, to_volume(random, SHAPE))


def test_gradient_is_exact_for_affine_functions() -> None:
    points = inside_points(200, seed=3)
    values = linear(vertices(LOW, HIGH, SHAPE))[:, :1]  # trilinear reproduces affine maps
    grads = gradient(values, corners(points, LOW, HIGH, SHAPE))
    assert torch.allclose(grads, COEFFICIENTS[:1].expand(200, 3), atol=1e-10)


def test_gradient_matches_the_derivative_of_interpolation() -> None:
    generator = torch.Generator().manual_seed(4)
    grid = torch.randn(VOXELS, 1, generator=generator, dtype=torch.float64)
    points = inside_points(50, seed=5).requires_grad_(True)
    values = interpolate(grid, corners(points, LOW, HIGH, SHAPE))
    (expected,) = torch.autograd.grad(values.sum(), points)
    assert torch.allclose(gradient(grid, corners(points.detach(), LOW, HIGH, SHAPE)), expected)


def test_gradient_is_zero_outside_and_trains_the_grid_sparsely() -> None:
    grid = torch.randn(VOXELS, 1, dtype=torch.float64, requires_grad=True)
    points = torch.cat([inside_points(10, seed=6), HIGH[None] + 1.0])
    grads = gradient(grid, corners(points, LOW, HIGH, SHAPE), sparse=True)
    assert torch.equal(grads[-1], torch.zeros(3, dtype=torch.float64))
    (grads.norm(dim=-1) - 1).square().sum().backward()  # an eikonal-style loss, first order
    assert grid.grad.is_sparse and 0 < grid.grad.coalesce().indices().shape[1] <= 11 * 8 < VOXELS


def test_gradient_refuses_many_channels() -> None:
    at = corners(inside_points(3), LOW, HIGH, SHAPE)
    with pytest.raises(ValueError, match="one-channel"):
        gradient(torch.zeros(VOXELS, 2, dtype=torch.float64), at)


def test_blur_keeps_constants_and_interior_affine_values() -> None:
    values = linear(vertices(LOW, HIGH, SHAPE))
    smoothed = to_volume(blur(values, SHAPE, passes=2), SHAPE)
    interior = (slice(None), slice(2, -2), slice(2, -2), slice(2, -2))
    assert torch.allclose(smoothed[interior], to_volume(values, SHAPE)[interior])
    constant = torch.full((VOXELS, 1), 3.0, dtype=torch.float64)
    assert torch.allclose(blur(constant, SHAPE, passes=3), constant)
    assert torch.equal(blur(values, SHAPE, passes=0), values)


def test_blur_spreads_a_spike_binomially_and_passes_gradients() -> None:
    spike = torch.zeros(VOXELS, 1, dtype=torch.float64)
    spike[(2 * 6 + 3) * 7 + 3] = 64.0  # vertex (2, 3, 3)
    spike.requires_grad_(True)
    volume = to_volume(blur(spike, SHAPE), SHAPE)[0]
    values = volume.detach()
    assert float(values[2, 3, 3]) == pytest.approx(8.0)  # 64 * (1/2)^3
    assert float(values[1, 3, 3]) == pytest.approx(4.0) and float(values[1, 2, 2]) == 1.0
    assert float(values.sum()) == pytest.approx(64.0)  # away from the faces: mass kept
    volume[2, 3, 3].backward()
    assert torch.count_nonzero(spike.grad) == 27  # the 3x3x3 neighbourhood
