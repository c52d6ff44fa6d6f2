"""The occupancy grid over Mip-NeRF 360's contracted cube: unreachable corners, far cells
judged by the world step a march takes there, near cells kept by the relaxed threshold."""

from __future__ import annotations

import torch

from atlas_core.nerf.contraction import CONTRACTED_BOUNDS, uncontract
from atlas_core.nerf.occupancy import OccupancyGrid


def update(grid: OccupancyGrid, density: float, step: float = 0.02) -> None:
    """One full update with a uniform density field."""
    grid.update(lambda p: torch.full((len(p), 1), density), step, 0.95, 0.01, all_cells=True)


def test_corners_outside_the_radius_two_ball_are_never_occupied() -> None:
    grid = OccupancyGrid(CONTRACTED_BOUNDS, 16, contracted=True)
    centres = grid.cell_centres(torch.arange(16**3), jitter=False)
    outside = centres.norm(dim=-1) >= 2.0
    assert outside.any() and not bool(grid.mask[outside].any())
    update(grid, 5.0)
    assert not bool(grid.mask[outside].any())


def test_uniform_thin_field_keeps_near_and_far_cells() -> None:
    """A thin uniform field (opacity per s-step below the threshold everywhere) keeps
    cells near the centre (the mean relaxes the threshold, far cells do not lift it)
    and every far cell (their world steps are long)."""
    grid = OccupancyGrid(CONTRACTED_BOUNDS, 16, contracted=True)
    update(grid, 0.2)  # 0.2 x 0.02 = 0.004 < 0.01 per s-step
    centres = grid.cell_centres(torch.arange(16**3), jitter=False)
    radius = uncontract(centres).norm(dim=-1)
    inside = centres.norm(dim=-1) < 1.0
    far = (radius > 20.0) & (centres.norm(dim=-1) < 2.0)
    assert bool(grid.mask[inside].any())
    assert bool(grid.mask[far].all())


def test_box_grid_is_unchanged_by_the_contracted_rules() -> None:
    """Without contraction every cell is reachable and steps are not rescaled."""
    grid = OccupancyGrid((-1.0, -1.0, -1.0, 1.0, 1.0, 1.0), 8)
    assert bool(grid.valid.all()) and bool((grid.step_scale == 1).all())
    update(grid, 1.0, step=0.02)
    assert bool(grid.mask.all())  # opacity 0.02 > threshold 0.01 everywhere
