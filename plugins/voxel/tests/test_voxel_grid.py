"""Trilinear interpolation of dense grids: exactness, linearity, the box, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from atlas_plugin_voxel.grid import corners, interpolate, resample, trilinear

LOW = torch.tensor([-1.0, -2.0, 0.0], dtype=torch.float64)
HIGH = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
SHAPE = (5, 6, 7)


def vertices(shape: tuple[int, int, int]) -> torch.Tensor:
    """World positions [X*Y*Z, 3] of every grid vertex, in flat-index order."""
    spans = zip(LOW.tolist(), HIGH.tolist(), shape, strict=True)
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64) for lo, hi, n in spans]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def inside_points(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return LOW + (HIGH - LOW) * torch.rand(count, 3, generator=generator, dtype=torch.float64)


def linear(points: torch.Tensor) -> torch.Tensor:
    """Two channels of affine functions of position [N, 2]."""
    x, y, z = points.unbind(-1)
    return torch.stack([1.0 + 2 * x - 3 * y + 0.5 * z, -x + 4 * z], dim=-1)


def test_exact_at_vertices() -> None:
    grid = torch.randn(3, *SHAPE, dtype=torch.float64)
    values = trilinear(grid, vertices(SHAPE), LOW, HIGH)
    assert torch.allclose(values, grid.reshape(3, -1).t(), atol=1e-12)


def test_exact_at_cell_centres_and_linear_between() -> None:
    # a grid holding an affine function is reproduced exactly everywhere inside
    grid = linear(vertices(SHAPE)).t().reshape(2, *SHAPE)
    points = inside_points(500)
    assert torch.allclose(trilinear(grid, points, LOW, HIGH), linear(points), atol=1e-10)
    # the centre of a cell is the mean of its eight corners
    grid = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    centre = ((LOW + HIGH) / 2)[None]
    assert torch.allclose(trilinear(grid, centre, LOW, HIGH)[0, 0], grid.mean())
    # along an edge the value moves linearly from one vertex to the next
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    edge = LOW + t[:, None] * torch.tensor([HIGH[0] - LOW[0], 0, 0], dtype=torch.float64)
    expected = grid[0, 0, 0, 0] + t * (grid[0, 1, 0, 0] - grid[0, 0, 0, 0])
    assert torch.allclose(trilinear(grid, edge, LOW, HIGH)[:, 0], expected)


def test_matches_grid_sample_align_corners() -> None:
    grid = torch.randn(4, *SHAPE, dtype=torch.float64)
    points = inside_points(300)
    unit = (points - LOW) / (HIGH - LOW) * 2 - 1
    ref = F.grid_sample(grid[None], unit.flip(-1).view(1, 1, 1, -1, 3), align_corners=True)
    ours = trilinear(grid, points, LOW, HIGH)
    assert torch.allclose(ours, ref.view(4, -1).t(), atol=1e-12)


def test_outside_the_box_reads_zero() -> None:
    grid = torch.ones(2, *SHAPE, dtype=torch.float64) * 7
    points = torch.tensor(
        [[-1.01, 0, 1], [1.01, 0, 1], [0, -2.5, 1], [0, 2.01, 1], [0, 0, -0.1], [0, 0, 3.2]],
        dtype=torch.float64,
    )
    at = corners(points, LOW, HIGH, SHAPE)
    assert not at.inside.any()
    assert torch.equal(interpolate(grid, at), torch.zeros(6, 2, dtype=torch.float64))
    # the faces of the box are inside and read the grid
    faces = torch.stack([LOW, HIGH])
    assert torch.allclose(trilinear(grid, faces, LOW, HIGH), torch.full((2, 2), 7.0).double())


def test_sorted_and_unsorted_agree_in_values_and_gradients() -> None:
    grid = torch.randn(3, *SHAPE, dtype=torch.float64, requires_grad=True)
    points = torch.cat([inside_points(400), LOW[None] - 1])  # one outside point too
    weights = torch.randn(len(points), 3, dtype=torch.float64)
    grads = []
    values = []
    for sort in (False, True):
        out = interpolate(grid, corners(points, LOW, HIGH, SHAPE, sort=sort))
        (out * weights).sum().backward()
        values.append(out.detach())
        grads.append(grid.grad.clone())
        grid.grad = None
    assert torch.allclose(values[0], values[1]) and torch.allclose(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


def test_gradcheck() -> None:
    grid = torch.randn(2, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    points = inside_points(20, seed=1)
    for sort in (False, True):
        at = corners(points, LOW, HIGH, (3, 4, 3), sort=sort)
        assert torch.autograd.gradcheck(lambda g, at=at: interpolate(g, at), (grid,))


def test_shape_mismatch_is_an_error() -> None:
    at = corners(inside_points(3), LOW, HIGH, SHAPE)
    with pytest.raises(ValueError, match="does not match"):
        interpolate(torch.zeros(1, 4, 4, 4, dtype=torch.float64), at)


def test_resample_keeps_affine_functions_and_vertices() -> None:
    grid = linear(vertices(SHAPE)).t().reshape(2, *SHAPE)
    bigger = resample(grid, (9, 11, 13))
    assert bigger.shape == (2, 9, 11, 13)
    assert torch.allclose(bigger, linear(vertices((9, 11, 13))).t().reshape(2, 9, 11, 13))
    # doubling minus one puts every old vertex on a new one
    random = torch.randn(1, *SHAPE, dtype=torch.float64)
    assert torch.allclose(resample(random, (9, 11, 13))[:, ::2, ::2, ::2], random)
