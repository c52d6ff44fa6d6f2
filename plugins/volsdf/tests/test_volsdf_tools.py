"""The synth-scene mesh accuracy tool: exact distances and a perfect mesh scores ~0."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))

from render_mesh import render  # noqa: E402
from synth_mesh_accuracy import surface_points, synth_sdf  # noqa: E402

from atlas_core.api import synth
from atlas_core.testing import export_mesh  # noqa: E402


def test_synth_sdf_at_known_points() -> None:
    sphere = synth.SHAPES[0]
    assert synth_sdf(np.zeros((1, 3)))[0] == -sphere.radius
    far = np.array([[0.0, 0.0, 5.0]])
    assert 3.0 < synth_sdf(far)[0] < 5.0
    points = surface_points(count=2000)
    assert len(points) > 100 and np.abs(synth_sdf(points)).max() < 1e-5


def test_exact_sdf_mesh_is_accurate(tmp_path: Path) -> None:
    class Exact(torch.nn.Module):
        def sdf(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(synth_sdf(x.double().numpy())).float()[:, None]

    bounds = (-1.2, -1.2, -1.2, 1.2, 1.2, 1.2)
    mesh = export_mesh(Exact(), bounds, tmp_path / "exact.ply", resolution=64)
    assert np.abs(synth_sdf(mesh.vertices.astype(np.float64))).mean() < 0.005


def test_render_mesh_draws_the_near_side_of_a_sphere(tmp_path: Path) -> None:
    class Sphere(torch.nn.Module):
        def sdf(self, x: torch.Tensor) -> torch.Tensor:
            return x.norm(dim=-1, keepdim=True) - 0.5

    box = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
    mesh = export_mesh(Sphere(), box, tmp_path / "s.ply", resolution=24)
    pose = np.eye(4)
    pose[2, 3] = 3.0  # on +z, looking down -z at the sphere
    image = render(mesh.vertices.astype(np.float64), mesh.faces, pose, 40.0, 40)
    assert np.allclose(image[0, 0], 1.0)  # the corner sees nothing: white
    centre = image[20, 20]  # the near pole: normal +z or -z, so blue is 1 or 0, red/green ~0.5
    assert abs(centre[0] - 0.5) < 0.1 and abs(centre[1] - 0.5) < 0.1 and abs(centre[2] - 0.5) > 0.4
    covered = (image != 1.0).any(axis=-1).mean()
    expected = np.pi * (40.0 * 0.5 / 3.0) ** 2 / 40**2  # the disc a radius-0.5 ball projects to
    assert abs(covered - expected) < 0.25 * expected
