"""``atlas export RUN mesh --visible-only`` and the capture's world frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from atlas_core.api import Views, look_at, project, read_ply
from atlas_core.commands.export import export_mesh, transform_mesh
from atlas_core.commands.mesh_visibility import visible_faces
from atlas_core.testing import run_cli

BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
SIZE = 48


class Ball(nn.Module):
    """The SDF of a ball of radius 0.5 at the origin."""

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1]."""
        return positions.norm(dim=-1, keepdim=True) - 0.5


def cameras_above(count: int = 6, elevation: float = 40.0) -> Tensor:
    """Camera-to-world matrices [count, 4, 4] on a ring 3 units away, looking at the origin."""
    poses = []
    up = math.radians(elevation)
    for i in range(count):
        azimuth = 2 * math.pi * i / count
        eye = 3.0 * torch.tensor(
            [math.cos(up) * math.cos(azimuth), math.cos(up) * math.sin(azimuth), math.sin(up)]
        )
        poses.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    return torch.stack(poses)


def views(c2w: Tensor, alpha: np.ndarray | None = None, **extras: Tensor) -> Views:
    """Grey images with the given alpha (full by default)."""
    images = np.full((len(c2w), SIZE, SIZE, 4), 128, dtype=np.uint8)
    if alpha is not None:
        images[..., 3] = alpha
    else:
        images[..., 3] = 255
    return Views(images=torch.from_numpy(images), c2w=c2w, focal=SIZE * 1.2,
                 names=[str(i) for i in range(len(c2w))], extras=extras)  # fmt: skip


def face_centres(path: Path) -> np.ndarray:
    mesh = read_ply(path)
    return mesh.vertices[mesh.faces].mean(axis=1)


def test_cameras_above_cull_the_hidden_underside(tmp_path: Path) -> None:
    export_mesh(Ball(), BOX, tmp_path / "a.ply", 40)
    full = face_centres(tmp_path / "a.ply")
    export_mesh(Ball(), BOX, tmp_path / "v.ply", 40, visible_in=views(cameras_above(6, 60.0)))
    kept = face_centres(tmp_path / "v.ply")
    assert full[:, 2].min() < -0.45 and len(kept) < 0.8 * len(full)
    # from 3 units, 60 degrees up, the ball is seen down to 20.4 degrees below its equator
    assert kept[:, 2].min() > -0.5 * math.sin(math.radians(30)) and kept[:, 2].max() > 0.48


def test_faces_outside_every_mask_are_culled(tmp_path: Path) -> None:
    c2w = cameras_above(1, 89.0)  # one camera straight above
    alpha = np.zeros((1, SIZE, SIZE), dtype=np.uint8)
    alpha[:, :, : SIZE // 2] = 255  # the left half of the image is the object
    export_mesh(Ball(), BOX, tmp_path / "m.ply", 40, visible_in=views(c2w, alpha))
    centres = face_centres(tmp_path / "m.ply")
    u, _, _ = project(centres.astype(np.float64), c2w[0].double().numpy(),
                      (SIZE * 1.2, SIZE * 1.2, SIZE / 2, SIZE / 2))  # fmt: skip
    assert len(centres) > 100 and (u < SIZE // 2 + 1).all()


def test_a_face_behind_another_surface_is_hidden() -> None:
    vertices = np.array(
        [[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.0, 0.1, 0.5],  # a small face on top
         [-0.1, -0.1, -0.5], [0.1, -0.1, -0.5], [0.0, 0.1, -0.5],  # the same, below
         *[[x, y, 0.0] for x in np.linspace(-0.3, 0.3, 30) for y in np.linspace(-0.3, 0.3, 30)]],
    )  # fmt: skip
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    seen = visible_faces(vertices, faces, views(cameras_above(1, 89.0)), spacing=0.01)
    assert seen.tolist() == [True, False]  # the dense sheet at z = 0 hides the lower face


def test_world_frame_moves_the_mesh(tmp_path: Path) -> None:
    scale = torch.eye(4)
    scale[:3, :3] *= 200.0
    scale[:3, 3] = torch.tensor([35.0, -12.0, 610.0])
    mesh = export_mesh(Ball(), BOX, tmp_path / "w.ply", 24, world=scale.numpy())
    radius = np.linalg.norm(mesh.vertices - np.array([35.0, -12.0, 610.0]), axis=1)
    assert np.allclose(radius, 100.0, rtol=0.03)
    flipped = transform_mesh(mesh, np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert (flipped.faces[:, 0] == mesh.faces[:, 2]).all()  # a mirror keeps faces outward


@pytest.mark.slow
def test_cli_culls_and_writes_dtu_meshes_in_the_scan_frame(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    scan, out = tmp_path / "scan", tmp_path / "run"
    assert run_cli(["data", "synth", str(scan), "--kind", "dtu", "--size", "32"]) == 0
    args = ["run", "--data", str(scan), "--data-kind", "dtu", "--plugins", "dtu,volsdf",
            "--set", "field=volsdf_grid", "--set", "field.init=sphere", "--set",
            "field.resolution=32", "--set", "field.initial_resolution=32", "--set",
            "field.upscale_steps=[]", "--max-steps", "2", "--eval-views", "0", "--set",
            "eval.video_frames=0", "--out", str(out)]  # fmt: skip
    assert run_cli(args) == 0
    assert run_cli(["export", str(out), "mesh", "--resolution", "48"]) == 0
    everything = read_ply(out / "mesh.ply")
    capsys.readouterr()
    assert run_cli(["export", str(out), "mesh", "--resolution", "48", "--visible-only"]) == 0
    printed = capsys.readouterr().out
    assert "training cameras" in printed and "world frame" in printed
    visible = read_ply(out / "mesh.ply")
    assert len(visible.faces) < len(everything.faces)
    centre = np.array([35.0, -12.0, 610.0])  # the generated scan's scale_mat offset
    assert np.linalg.norm(visible.vertices.mean(0) - centre) < 200.0
    assert np.ptp(visible.vertices, axis=0).max() > 50.0  # millimetre-like units
