"""Which mesh faces the training cameras see, and the scan's world frame.

``atlas export RUN mesh --visible-only`` keeps the faces that at least one training camera
sees, as the DTU evaluations of NeuS (Wang et al. 2021) and VolSDF (Yariv et al. 2021)
cull their meshes: a face is seen by a camera when its centre projects inside the image,
inside the view's mask (its alpha, when the data has masks), and is not hidden behind
the surface, which is a depth test against the depth of the mesh rendered from that
camera (a z-buffer of the mesh's vertices and face centres splatted to pixels, fine
enough for marching-cubes meshes whose faces are smaller than a pixel).

Data kinds may give each view the 4x4 matrix from the loaded scene's frame to the
capture's own world frame as ``Views.extras[WORLD_FROM_SCENE]`` (the ``dtu`` kind puts
``scale_mat`` there); meshes are then written in that frame.
"""

from __future__ import annotations

import numpy as np
import torch

from atlas_core.data.scene import Views
from atlas_core.nerf.cameras import project

__all__ = [
    "WORLD_FROM_SCENE",
    "depth_buffer",
    "visible_faces",
    "world_matrix",
]

WORLD_FROM_SCENE = "world_from_scene"
"""``Views.extras`` key: [N, 4, 4] from the loaded scene's frame to the capture's world."""

MASK_LEVEL = 127  # alpha above this is inside the mask


def depth_buffer(
    u: np.ndarray, v: np.ndarray, depth: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Nearest depth per pixel [H, W] of splatted points (inf where none lands)."""
    col, row = np.floor(u), np.floor(v)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height) & (depth > 0)
    buffer = np.full(height * width, np.inf)
    flat = row[inside].astype(np.int64) * width + col[inside].astype(np.int64)
    np.minimum.at(buffer, flat, depth[inside])
    return buffer.reshape(height, width)


def visible_faces(
    vertices: np.ndarray, faces: np.ndarray, views: Views, spacing: float
) -> np.ndarray:
    """Boolean [F]: faces that some view of ``views`` sees (inside its frame and mask, in
    front of the surface within two grid ``spacing``s plus two pixels' footprint)."""
    centres = vertices[faces].mean(axis=1)
    splats = np.concatenate([vertices, centres])
    seen = np.zeros(len(faces), dtype=bool)
    images = views.images
    for i in range(len(views)):
        c2w = views.c2w[i].double().cpu().numpy()
        intrinsics = views.intrinsics(i)
        width, height = views.width, views.height
        u, v, depth = project(splats, c2w, intrinsics)
        buffer = depth_buffer(u, v, depth, width, height)
        u, v, depth = u[len(vertices) :], v[len(vertices) :], depth[len(vertices) :]
        col, row = np.floor(u), np.floor(v)
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height) & (depth > 0)
        index = np.nonzero(inside & ~seen)[0]
        r, c = row[index].astype(np.int64), col[index].astype(np.int64)
        alpha = images[i, :, :, 3].cpu().numpy()
        in_mask = alpha[r, c] > MASK_LEVEL
        footprint = 2.0 * depth[index] / min(intrinsics[0], intrinsics[1])
        front = depth[index] <= buffer[r, c] + 2.0 * spacing + footprint
        seen[index[in_mask & front]] = True
    return seen


def world_matrix(views: Views) -> np.ndarray | None:
    """The views' matrix to the capture's world frame (``WORLD_FROM_SCENE``), or None."""
    matrices = views.extras.get(WORLD_FROM_SCENE)
    if matrices is None or not len(matrices):
        return None
    matrix = matrices[0]
    if not torch.allclose(matrices, matrix.expand_as(matrices)):
        return None  # per-view frames disagree: no one world frame
    return matrix.double().cpu().numpy()
