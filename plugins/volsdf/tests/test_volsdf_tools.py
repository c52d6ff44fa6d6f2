"""The synth-scene mesh accuracy tool: exact distances and a perfect mesh scores ~0."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))

from synth_mesh_accuracy import surface_points, synth_sdf  # noqa: E402

from atlas_core.data.synth import SHAPES  # noqa: E402
from atlas_core.export import export_mesh  # noqa: E402


def test_synth_sdf_at_known_points() -> None:
    sphere = SHAPES[0]
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
