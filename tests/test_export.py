"""Mesh export: analytic fields, PLY round trip, `atlas export RUN_DIR mesh` and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from atlas_core.cli import main
from atlas_core.commands.export import (
    Mesh,
    connected_components,
    export_mesh,
    ply_bytes,
    read_ply,
    sample_grid,
)
from atlas_core.errors import AtlasError

BOX = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)


class SphereSDF(nn.Module):
    """The exact signed distance to a sphere."""

    def __init__(self, radius: float, center: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        super().__init__()
        self.radius = radius
        self.register_buffer("center", torch.tensor(center))

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1]."""
        return (positions - self.center).norm(dim=-1, keepdim=True) - self.radius


class GaussianDensity(nn.Module):
    """A density blob ``100 exp(-|x|^2)``: its level 25 is the sphere |x| = sqrt(ln 4)."""

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1]."""
        return 100.0 * torch.exp(-positions.square().sum(-1, keepdim=True))


def face_normals_point_out(mesh: Mesh, center: np.ndarray) -> float:
    """Fraction of faces whose winding normal points away from ``center``."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    return float(((normal * ((a + b + c) / 3 - center)).sum(-1) > 0).mean())


def test_sphere_sdf_mesh_lies_on_the_sphere(tmp_path: Path) -> None:
    center = np.array([0.2, -0.1, 0.3], dtype=np.float32)
    mesh = export_mesh(SphereSDF(0.9, tuple(center)), BOX, tmp_path / "m.ply", resolution=48)
    distance = np.abs(np.linalg.norm(mesh.vertices - center, axis=-1) - 0.9)
    assert distance.max() < 0.01  # voxel size 0.064
    assert len(mesh.vertices) > 1000 and connected_components(mesh) == 1
    assert face_normals_point_out(mesh, center) == 1.0
    radial = (mesh.vertices - center) / np.linalg.norm(mesh.vertices - center, axis=-1)[:, None]
    assert ((mesh.normals * radial).sum(-1) > 0.95).all()
    again = read_ply(tmp_path / "m.ply")
    assert np.array_equal(again.vertices, mesh.vertices) and np.array_equal(again.faces, mesh.faces)


def test_a_wrapped_sdf_is_found(tmp_path: Path) -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = SphereSDF(0.5)

        def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
            return torch.zeros(len(positions), 1)  # no surface at any level

    mesh = export_mesh(Wrapper(), BOX, tmp_path / "w.ply", resolution=24)
    assert np.abs(np.linalg.norm(mesh.vertices, axis=-1) - 0.5).max() < 0.01


def test_density_field_uses_the_level_option(tmp_path: Path) -> None:
    mesh = export_mesh(GaussianDensity(), BOX, tmp_path / "d.ply", resolution=40)
    radius = math.sqrt(math.log(4.0))  # default level 25
    assert np.abs(np.linalg.norm(mesh.vertices, axis=-1) - radius).max() < 0.02
    mesh = export_mesh(GaussianDensity(), BOX, tmp_path / "d.ply", resolution=40, level=50.0)
    radius = math.sqrt(math.log(2.0))
    assert np.abs(np.linalg.norm(mesh.vertices, axis=-1) - radius).max() < 0.02
    assert face_normals_point_out(mesh, np.zeros(3)) == 1.0


def test_surfaces_cut_by_the_box_are_closed(tmp_path: Path) -> None:
    mesh = export_mesh(SphereSDF(1.7), BOX, tmp_path / "big.ply", resolution=24)
    edges = np.sort(np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]],
                                    mesh.faces[:, [2, 0]]]), axis=1)  # fmt: skip
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # watertight: every edge shared by exactly two faces
    assert connected_components(mesh) == 1


def test_two_spheres_are_two_components() -> None:
    class TwoSpheres(nn.Module):
        def sdf(self, x: Tensor) -> Tensor:
            a = (x - torch.tensor([0.7, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.4
            b = (x + torch.tensor([0.7, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.4
            return torch.minimum(a, b)

    values = sample_grid(TwoSpheres().sdf, BOX, 32, torch.device("cpu"), chunk=1000)
    assert values.shape == (32, 32, 32)
    from atlas_core.commands.export import extract_mesh

    mesh = extract_mesh(values, BOX, 0.0, inside_above=False)
    assert connected_components(mesh) == 2


def test_small_components_are_dropped_on_request(tmp_path: Path) -> None:
    class BigAndSmall(nn.Module):
        def sdf(self, x: Tensor) -> Tensor:
            a = (x - torch.tensor([0.4, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.5
            b = (x + torch.tensor([0.8, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.12
            return torch.minimum(a, b)

    kept = export_mesh(BigAndSmall(), BOX, tmp_path / "all.ply", resolution=40)
    big = export_mesh(BigAndSmall(), BOX, tmp_path / "big.ply", 40, min_component=0.2)
    assert connected_components(kept) == 2 and connected_components(big) == 1
    assert len(big.faces) < len(kept.faces) and int(big.faces.max()) == len(big.vertices) - 1
    assert float(big.vertices[:, 0].min()) > -0.2  # the small sphere at x = -0.8 is gone
    assert connected_components(read_ply(tmp_path / "big.ply")) == 1
    with pytest.raises(AtlasError, match="--min-component"):
        export_mesh(BigAndSmall(), BOX, tmp_path / "x.ply", 8, min_component=2.0)


def test_ply_header_is_standard() -> None:
    mesh = Mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]], np.int32), np.eye(3))
    data = ply_bytes(mesh)
    header = data[: data.index(b"end_header\n")].decode()
    assert header.startswith("ply\nformat binary_little_endian 1.0\n")
    assert "element vertex 3" in header and "element face 1" in header
    assert "property list uchar int vertex_indices" in header
    assert len(data) == len(header) + len("end_header\n") + 3 * 24 + 13


def test_no_surface_and_no_density_are_errors(tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="no surface at level 0"):
        export_mesh(SphereSDF(5.0), BOX, tmp_path / "x.ply", resolution=8)
    with pytest.raises(AtlasError, match="--resolution"):
        export_mesh(SphereSDF(1.0), BOX, tmp_path / "x.ply", resolution=1)
    with pytest.raises(AtlasError, match="neither sdf"):
        export_mesh(nn.Linear(3, 1), BOX, tmp_path / "x.ply", resolution=8)  # no density()
    assert not (tmp_path / "x.ply").exists()


def test_cli_exports_a_trained_density_field(atlas_scene, tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    from atlas_core.engine.trainer import load_trained

    out = tmp_path / "run"
    assert main(["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]) == 0
    field = load_trained(str(out), "cpu").pipeline.field.eval()
    values = sample_grid(field.density, BOX, 16, torch.device("cpu"))
    level = float(np.median(values))  # any level the trained field crosses
    capsys.readouterr()
    args = ["export", str(out), "mesh", "--resolution", "16", "--level", str(level)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    mesh = read_ply(out / "mesh.ply")
    assert len(mesh.faces) > 0
    assert f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces" in printed


def test_cli_bad_input_is_one_line_and_exit_2(atlas_scene, tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(tmp_path / "missing"), "mesh"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["export", str(empty), "mesh"]) == 2
    assert "config.toml" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "mesh", "--resolution", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resolution" in err
    assert main(["export", str(out), "mesh", "--resolution", "8", "--level", "1e9"]) == 2
    assert "no surface at level" in capsys.readouterr().err
    assert main(["export", str(out), "mesh", "--min-component", "-1"]) == 2
    assert "--min-component" in capsys.readouterr().err
    for path in (out / "checkpoints").iterdir():
        path.unlink()
    assert main(["export", str(out), "mesh"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(out), "pointcloud"])
    assert exc.value.code == 2
