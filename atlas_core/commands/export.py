"""Mesh export: sample a field's SDF or density on a grid, marching cubes, binary PLY.

Marching cubes (Lorensen & Cline 1987) via scikit-image (``measure.marching_cubes``,
Lewiner et al. 2003). The grid covers the scene box and is padded by one voxel of
empty space, so surfaces that reach the box are closed there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from atlas_core.capabilities import HasDensity, HasSDF, first_with
from atlas_core.commands.mesh_visibility import visible_faces, world_matrix
from atlas_core.data.scene import Views
from atlas_core.errors import AtlasError
from atlas_core.io import atomic_write_bytes

__all__ = [
    "DENSITY_LEVEL",
    "Mesh",
    "cmd_export",
    "component_labels",
    "connected_components",
    "drop_small_components",
    "export_mesh",
    "extract_mesh",
    "keep_faces",
    "occupancy_function",
    "ply_bytes",
    "read_ply",
    "sample_grid",
    "transform_mesh",
]

DENSITY_LEVEL = 25.0  # default iso-level for density fields


@dataclass
class Mesh:
    """A triangle mesh: vertices [V, 3] float32, faces [F, 3] int32, vertex normals [V, 3]."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray


def occupancy_function(field: nn.Module) -> tuple[str, Callable[[Tensor], Tensor]]:
    """An ``sdf`` of the field or of a field it wraps (``HasSDF``), else its ``density``
    (``HasDensity``): (kind, function).

    A wrapped SDF (say, the canonical field inside a deformation) is meshed as it is.
    """
    surface = first_with(field, HasSDF)
    if surface is not None:
        return "sdf", surface.sdf
    if not isinstance(field, HasDensity):
        raise AtlasError(f"{type(field).__name__} has neither sdf() nor density() to mesh")
    return "density", field.density


@torch.no_grad()
def sample_grid(
    function: Callable[[Tensor], Tensor],
    bounds: tuple[float, ...],
    resolution: int,
    device: torch.device,
    chunk: int = 1 << 18,
) -> np.ndarray:
    """Values [R, R, R] of ``function`` at the nodes of a regular grid over the box."""
    axes = [torch.linspace(bounds[i], bounds[i + 3], resolution, device=device) for i in range(3)]
    values = np.empty((resolution,) * 3, dtype=np.float32)
    slab = max(1, chunk // (resolution * resolution))
    for start in range(0, resolution, slab):
        xs = axes[0][start : start + slab]
        grid = torch.stack(torch.meshgrid(xs, axes[1], axes[2], indexing="ij"), dim=-1)
        out = function(grid.reshape(-1, 3)).reshape(len(xs), resolution, resolution)
        values[start : start + len(xs)] = out.float().cpu().numpy()
    return values


def extract_mesh(
    values: np.ndarray, bounds: tuple[float, ...], level: float, inside_above: bool
) -> Mesh:
    """Marching cubes of ``values`` at ``level``; ``inside_above``: the object is > level.

    Faces wind counter-clockwise seen from outside, so their normals point out.
    """
    from skimage import measure

    occupancy = values if inside_above else -values
    threshold = level if inside_above else -level
    finite = np.nan_to_num(occupancy, nan=-np.inf)
    finite = np.where(np.isfinite(finite), finite, np.where(finite > 0, 1e30, -1e30))
    low, high = float(finite.min()), float(finite.max())
    if not low < threshold < high:
        kind = "density" if inside_above else "sdf"
        shown = (low, high) if inside_above else (-high, -low)
        raise AtlasError(
            f"no surface at level {level:g}: the {kind} ranges over "
            f"[{shown[0]:.3g}, {shown[1]:.3g}] in the scene box; pick --level inside it"
        )
    padded = np.pad(finite, 1, constant_values=min(low, threshold) - 1.0)
    resolution = np.array(values.shape, dtype=np.float64)
    low_corner = np.array(bounds[:3], dtype=np.float64)
    spacing = (np.array(bounds[3:]) - low_corner) / (resolution - 1)
    vertices, faces, normals, _ = measure.marching_cubes(
        padded, threshold, spacing=tuple(spacing), gradient_direction="ascent"
    )
    vertices = vertices - spacing + low_corner  # undo the padding voxel
    return Mesh(vertices.astype(np.float32), faces.astype(np.int32), normals.astype(np.float32))


def component_labels(mesh: Mesh) -> tuple[int, np.ndarray]:
    """Connected components (vertices joined by face edges): count and per-vertex label."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    count = len(mesh.vertices)
    if count == 0:
        return 0, np.zeros(0, dtype=np.int64)
    f = mesh.faces
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, count))
    found, labels = components(graph, directed=False)
    return int(found), labels


def connected_components(mesh: Mesh) -> int:
    """Number of connected components (vertices joined by face edges)."""
    return component_labels(mesh)[0]


def drop_small_components(mesh: Mesh, fraction: float) -> Mesh:
    """``mesh`` without components of fewer than ``fraction`` times the largest one's faces."""
    count, labels = component_labels(mesh)
    if count <= 1 or fraction <= 0:
        return mesh
    face_label = labels[mesh.faces[:, 0]]
    sizes = np.bincount(face_label, minlength=count)
    return keep_faces(mesh, sizes[face_label] >= fraction * sizes.max())


def keep_faces(mesh: Mesh, keep: np.ndarray) -> Mesh:
    """``mesh`` with only the faces where ``keep`` [F] is True, and the vertices they use."""
    faces = mesh.faces[keep]
    used = np.unique(faces)
    remap = np.full(len(mesh.vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return Mesh(mesh.vertices[used], remap[faces].astype(np.int32), mesh.normals[used])


def transform_mesh(mesh: Mesh, matrix: np.ndarray) -> Mesh:
    """``mesh`` moved by the 4x4 similarity ``matrix`` (normals by its inverse transpose)."""
    linear, shift = matrix[:3, :3], matrix[:3, 3]
    vertices = mesh.vertices.astype(np.float64) @ linear.T + shift
    normals = mesh.normals.astype(np.float64) @ np.linalg.inv(linear)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    faces = mesh.faces if np.linalg.det(linear) > 0 else mesh.faces[:, ::-1].copy()
    return Mesh(vertices.astype(np.float32), faces, normals.astype(np.float32))


def ply_bytes(mesh: Mesh) -> bytes:
    """The mesh as binary little-endian PLY (positions, normals, triangles)."""
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by nerf-atlas\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        f"element face {len(mesh.faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    vertex = np.empty(len(mesh.vertices), dtype=[("p", "<f4", 3), ("n", "<f4", 3)])
    vertex["p"], vertex["n"] = mesh.vertices, mesh.normals
    face = np.empty(len(mesh.faces), dtype=[("k", "u1"), ("i", "<i4", 3)])
    face["k"], face["i"] = 3, mesh.faces
    return header.encode("ascii") + vertex.tobytes() + face.tobytes()


def read_ply(path: Path) -> Mesh:
    """Read a binary PLY written by :func:`ply_bytes` (triangles only)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    counts = {}
    for line in data[:end].decode("ascii").splitlines():
        parts = line.split()
        if parts[:1] == ["element"]:
            counts[parts[1]] = int(parts[2])
    vertex_type = np.dtype([("p", "<f4", 3), ("n", "<f4", 3)])
    vertex = np.frombuffer(data, vertex_type, counts["vertex"], end)
    face_type = np.dtype([("k", "u1"), ("i", "<i4", 3)])
    face = np.frombuffer(data, face_type, counts["face"], end + vertex.nbytes)
    return Mesh(vertex["p"].copy(), face["i"].copy(), vertex["n"].copy())


def export_mesh(
    field: nn.Module,
    bounds: tuple[float, ...],
    path: Path,
    resolution: int = 256,
    level: float | None = None,
    device: torch.device | str = "cpu",
    min_component: float = 0.0,
    visible_in: Views | None = None,
    world: np.ndarray | None = None,
) -> Mesh:
    """Sample the field on the box, extract its surface and write ``path`` as PLY.

    Fields with an ``sdf`` method give the zero level set (``level`` shifts it);
    otherwise the density is thresholded at ``level`` (default 25). ``min_component`` > 0
    drops components with fewer faces than that fraction of the largest one's.
    ``visible_in``: keep only the faces these views see (``mesh_visibility``); ``world``:
    a 4x4 matrix the mesh is moved by before it is written.
    """
    if resolution < 2:
        raise AtlasError(f"--resolution must be >= 2, got {resolution}")
    if not 0 <= min_component <= 1:
        raise AtlasError(f"--min-component must be in [0, 1], got {min_component}")
    kind, function = occupancy_function(field)
    if level is None:
        level = 0.0 if kind == "sdf" else DENSITY_LEVEL
    was_training = field.training
    field.eval()
    try:
        values = sample_grid(function, bounds, resolution, torch.device(device))
    except NotImplementedError as exc:
        raise AtlasError(f"{type(field).__name__} has neither sdf() nor density() to mesh") from exc
    finally:
        field.train(was_training)
    mesh = extract_mesh(values, bounds, level, inside_above=kind == "density")
    mesh = drop_small_components(mesh, min_component)
    if visible_in is not None:
        spacing = float(max(bounds[i + 3] - bounds[i] for i in range(3))) / (resolution - 1)
        mesh = keep_faces(mesh, visible_faces(mesh.vertices, mesh.faces, visible_in, spacing))
    if world is not None:
        mesh = transform_mesh(mesh, world)
    atomic_write_bytes(Path(path), ply_bytes(mesh))
    return mesh


def cmd_export(args: argparse.Namespace) -> int:
    """``atlas export RUN_DIR mesh``: the trained field's surface into RUN_DIR/mesh.ply.

    ``--visible-only`` keeps the faces some training camera sees; when the data kind gives
    the capture's world frame (``dtu``: ``scale_mat``) the mesh is written in that frame.
    """
    from atlas_core.engine.trainer import load_trained

    if args.resolution < 2:
        raise AtlasError(f"--resolution must be >= 2, got {args.resolution}")
    if not Path(args.run_dir).is_dir():
        raise AtlasError(f"{args.run_dir}: not a run folder")
    trainer = load_trained(args.run_dir, args.device)
    path = trainer.out / "mesh.ply"
    field, scene = trainer.pipeline.field, trainer.scene
    train = scene.split("train")
    visible = train if getattr(args, "visible_only", False) else None
    world = world_matrix(train)
    mesh = export_mesh(
        field, scene.bounds, path, args.resolution, args.level, trainer.device,
        args.min_component, visible, world,
    )  # fmt: skip
    notes = []
    if visible is not None:
        notes.append(f"faces seen by the {len(train)} training cameras only")
    if world is not None:
        notes.append("in the capture's world frame (the data's scale_mat)")
    print(
        f"wrote {path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
        f"{connected_components(mesh)} connected components"
        + "".join(f"; {note}" for note in notes)
    )
    return 0
