"""tools/chamfer.py: DTU's accuracy and completeness, the ground plane and the ObsMask."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from atlas_core.api import SceneData, Views, look_at
from atlas_core.commands.export import export_mesh

TOOL = Path(__file__).resolve().parents[1] / "tools" / "chamfer.py"
BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
PLANE = np.array([0.0, 0.0, 1.0, 0.3])  # z = -0.3, normal up


def load_tool():  # noqa: ANN201 - the module
    spec = importlib.util.spec_from_file_location("chamfer_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chamfer_tool = load_tool()


class Balls(nn.Module):
    """Union of balls (centre, radius) as an SDF."""

    def __init__(self, *balls: tuple[tuple[float, float, float], float]):
        super().__init__()
        self.balls = balls

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1]."""
        each = [(positions - torch.tensor(c)).norm(dim=-1) - r for c, r in self.balls]
        return torch.stack(each).amin(0)[:, None]


def truth(count: int = 40_000) -> np.ndarray:
    """Points on the ball of radius 0.5 above the plane."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(count, 3))
    points = 0.5 * points / np.linalg.norm(points, axis=1, keepdims=True)
    return points[points[:, 2] > -0.3]


def mesh_points(field: nn.Module, tmp_path: Path) -> np.ndarray:
    mesh = export_mesh(field, BOX, tmp_path / "m.ply", 96)
    return chamfer_tool.sample_mesh(mesh.vertices, mesh.faces, 0.004)


def test_terms_measure_the_offset_and_the_plane_cuts(tmp_path: Path) -> None:
    exact = chamfer_tool.chamfer(mesh_points(Balls(((0, 0, 0), 0.5)), tmp_path), truth(),
                                 PLANE, 1.0, None)  # fmt: skip
    assert exact["accuracy"] < 0.005 and exact["completeness"] < 0.005
    bigger = chamfer_tool.chamfer(mesh_points(Balls(((0, 0, 0), 0.55)), tmp_path), truth(),
                                  PLANE, 1.0, None)  # fmt: skip
    assert bigger["accuracy"] == pytest.approx(0.05, abs=0.01)
    below = Balls(((0, 0, 0), 0.5), ((0.0, 0.0, -0.75), 0.2))  # a blob under the plane
    cut = chamfer_tool.chamfer(mesh_points(below, tmp_path), truth(), PLANE, 1.0, None)
    assert cut["accuracy"] < 0.005 and cut["mesh_points_left_out"] > 100


def test_points_outside_every_mask_are_left_out(tmp_path: Path) -> None:
    floater = Balls(((0, 0, 0), 0.5), ((0.0, 0.8, 0.5), 0.1))
    points = mesh_points(floater, tmp_path)
    everything = chamfer_tool.chamfer(points, truth(), PLANE, 1.0, None, max_dist=1.0)
    assert everything["accuracy"] > 0.01
    eye = torch.tensor([0.0, -3.0 * math.cos(0.5), 3.0 * math.sin(0.5)])
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))[None]
    size, focal = 64, 64 * 1.5
    u, v, _ = chamfer_tool.project(truth().astype(np.float64), c2w[0].double().numpy(),
                                   (focal, focal, size / 2, size / 2))  # fmt: skip
    images = np.zeros((1, size, size, 4), dtype=np.uint8)
    images[0, np.clip(v.astype(int), 0, size - 1), np.clip(u.astype(int), 0, size - 1), 3] = 255
    views = Views(images=torch.from_numpy(images), c2w=c2w, focal=focal, names=["0"])
    scene = SceneData({"train": views})
    masked = chamfer_tool.chamfer(points, truth(), PLANE, 1.0, scene, max_dist=1.0, all_truth=True)
    assert masked["accuracy"] < 0.005  # the floater projects outside the mask


def test_cli_reports_each_term_and_refuses_a_scene_without_truth(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    np.savez(scene / "truth.npz", points=truth().astype(np.float32), plane=PLANE,
             size=np.array(1.0))  # fmt: skip
    export_mesh(Balls(((0, 0, 0), 0.52)), BOX, tmp_path / "m.ply", 64)
    out = tmp_path / "terms.json"
    args = [str(tmp_path / "m.ply"), str(scene), "--no-obs-mask", "--density", "0.005",
            "--json", str(out)]  # fmt: skip
    assert chamfer_tool.main(args) == 0
    terms = json.loads(out.read_text())
    assert terms["accuracy"] == pytest.approx(0.02, abs=0.006)
    assert terms["chamfer_percent"] == pytest.approx(100 * terms["chamfer"])
    assert chamfer_tool.main([str(tmp_path / "m.ply"), str(tmp_path)]) == 2


class FrontHalf(nn.Module):
    """The ball of radius 0.5 cut to the half facing ``towards`` (the back is missing)."""

    def __init__(self, towards: Tensor):
        super().__init__()
        self.towards = towards / towards.norm()

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] (exact enough for meshing)."""
        ball = positions.norm(dim=-1) - 0.5
        return torch.maximum(ball, -(positions @ self.towards))[:, None]


def test_true_points_no_camera_sees_are_left_out(tmp_path: Path) -> None:
    eye = torch.tensor([0.0, -3.0, 0.4])
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))[None]
    size, focal = 96, 96 * 1.5
    images = np.zeros((1, size, size, 4), dtype=np.uint8)
    images[..., 3] = 255  # the whole frame is inside the mask
    views = Views(images=torch.from_numpy(images), c2w=c2w, focal=focal, names=["0"])
    scene = SceneData({"train": views})
    front = mesh_points(FrontHalf(eye), tmp_path)
    kept = chamfer_tool.chamfer(front, truth(), PLANE, 1.0, scene, max_dist=1.0)
    every = chamfer_tool.chamfer(front, truth(), PLANE, 1.0, scene, max_dist=1.0, all_truth=True)
    assert every["truth_points_unseen"] == 0
    assert 0.35 < kept["truth_points_unseen"] / every["truth_points"] < 0.65  # the back half
    assert kept["completeness"] < 0.01 < every["completeness"]
