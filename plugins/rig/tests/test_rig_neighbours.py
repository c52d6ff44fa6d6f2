"""The bucket-grid neighbour search against brute force, at the box's edges and in chunks."""

from __future__ import annotations

import itertools

import pytest
import torch
from atlas_plugin_rig import neighbours as neighbours_module
from atlas_plugin_rig.neighbours import BucketGrid

LOW, HIGH = torch.full((3,), -1.0), torch.full((3,), 1.0)


def brute_force(samples: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """Sorted distances [S, k] to the k nearest of all points."""
    distances = (samples[:, None, :] - points[None, :, :]).norm(dim=-1)
    return distances.topk(k, dim=1, largest=False).values.sort(dim=1).values


def found_distances(
    samples: torch.Tensor, points: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """Sorted distances [S, k] from each sample to the points the query returned."""
    return (samples[:, None, :] - points[index]).norm(dim=-1).sort(dim=1).values


def block_candidates(grid: BucketGrid, sample: torch.Tensor, points: torch.Tensor) -> list[int]:
    """Indices of the points in the 27 cells around ``sample``'s cell (by brute force)."""
    own = grid.cell_of(sample[None])[0]
    cells = grid.cell_of(points)
    around = {int(own + o) for o in grid.offsets}
    return [i for i, c in enumerate(cells.tolist()) if c in around]


def test_crowded_cells_give_the_exact_nearest_points() -> None:
    """With many points per cell the k nearest always lie in the 27 cells searched."""
    generator = torch.Generator().manual_seed(0)
    points = LOW + (HIGH - LOW) * torch.rand(4000, 3, generator=generator)
    samples = 1.8 * torch.rand(500, 3, generator=generator) - 0.9
    grid = BucketGrid(points, LOW, HIGH, (5, 5, 5))  # 32 points per cell
    found = grid.query(samples, 6)
    assert found.index.shape == found.valid.shape == (500, 6) and bool(found.valid.all())
    expected = brute_force(samples, points, 6)
    assert torch.allclose(found_distances(samples, points, found.index), expected, atol=1e-6)


def test_sparse_cells_give_the_nearest_points_of_the_27_cells() -> None:
    """About one point per cell: the result is the k nearest among the searched cells."""
    generator = torch.Generator().manual_seed(1)
    points = LOW + (HIGH - LOW) * torch.rand(512, 3, generator=generator)
    samples = 2.0 * torch.rand(200, 3, generator=generator) - 1.0
    grid = BucketGrid(points, LOW, HIGH, (8, 8, 8))
    found = grid.query(samples, 4)
    for s, sample in enumerate(samples):
        candidates = block_candidates(grid, sample, points)
        count = min(4, len(candidates))
        assert int(found.valid[s].sum()) == count
        expected = (points[candidates] - sample).norm(dim=-1).sort().values[:count]
        got = (points[found.index[s][found.valid[s]]] - sample).norm(dim=-1).sort().values
        assert torch.allclose(got, expected, atol=1e-6)


def test_points_and_samples_outside_the_box() -> None:
    """Points beyond the box are found from inside it; samples beyond it are served."""
    points = torch.tensor([[1.3, 0.0, 0.0], [0.9, 0.0, 0.0], [-0.9, 0.0, 0.0], [0.0, 5.0, 0.0]])
    grid = BucketGrid(points, LOW, HIGH, (4, 4, 4))
    samples = torch.tensor([[0.95, 0.0, 0.0], [1.6, 0.0, 0.0], [0.0, 9.0, 0.0]])
    found = grid.query(samples, 2)
    first = set(found.index[0][found.valid[0]].tolist())
    assert first == {0, 1}  # both near points, the one outside the box included
    second = set(found.index[1][found.valid[1]].tolist())
    assert second == {0, 1}
    third = set(found.index[2][found.valid[2]].tolist())
    assert third == {3, 1}  # far outside: the nearest points of its border cell's block


def test_fewer_candidates_than_k_are_marked_invalid() -> None:
    points = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.1, 0.1]])
    grid = BucketGrid(points, LOW, HIGH, (8, 8, 8))
    found = grid.query(torch.tensor([[0.15, 0.1, 0.1], [-0.9, -0.9, -0.9]]), 3)
    assert found.valid.sum(1).tolist() == [2, 0]
    assert set(found.index[0][found.valid[0]].tolist()) == {0, 1}
    assert bool((found.index[~found.valid] == 0).all())


def test_chunks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(2)
    points = LOW + (HIGH - LOW) * torch.rand(700, 3, generator=generator)
    samples = 2.0 * torch.rand(300, 3, generator=generator) - 1.0
    grid = BucketGrid(points, LOW, HIGH, (9, 9, 9))
    whole = grid.query(samples, 5)
    monkeypatch.setattr(neighbours_module, "CHUNK", 64)  # a few samples per chunk
    parts = grid.query(samples, 5)
    assert torch.equal(whole.valid, parts.valid)
    assert torch.equal(
        found_distances(samples, points, whole.index), found_distances(samples, points, parts.index)
    )


def test_no_samples() -> None:
    grid = BucketGrid(torch.rand(10, 3), LOW, HIGH, (2, 2, 2))
    found = grid.query(torch.zeros(0, 3), 3)
    assert found.index.shape == (0, 3) and found.valid.shape == (0, 3)


def test_cells_cover_a_box_that_is_not_a_cube() -> None:
    low, high = torch.tensor([-2.0, -0.5, 0.0]), torch.tensor([2.0, 0.5, 0.5])
    corners = torch.tensor(list(itertools.product(*zip(low.tolist(), high.tolist(), strict=True))))
    grid = BucketGrid(corners, low, high, (8, 2, 2))
    cells = grid.cell_of(corners)
    assert len(set(cells.tolist())) == 8  # every corner in a cell of its own
    assert bool((grid.counts.sum() == 8) & (grid.counts.max() == 1))
