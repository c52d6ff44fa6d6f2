"""World points into source cameras (NeRF/Blender convention) and feature look-ups.

Camera space looks along -Z with +Y up (``atlas_core.cameras``); pixel ``(col, row)``
covers ``[col, col + 1] x [row, row + 1]``, so its centre projects to ``col + 0.5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


def world_to_camera(points: Tensor, c2w: Tensor) -> Tensor:
    """Points [..., 3] in the frame of cameras ``c2w`` [..., 4, 4]: R^T (x - t)."""
    rot, eye = c2w[..., :3, :3], c2w[..., :3, 3]
    return ((points - eye).unsqueeze(-2) @ rot).squeeze(-2)


def rotate_to_camera(directions: Tensor, c2w: Tensor) -> Tensor:
    """Directions [..., 3] in the frame of cameras ``c2w``: R^T d."""
    return (directions.unsqueeze(-2) @ c2w[..., :3, :3]).squeeze(-2)


def project(points_cam: Tensor, focal: float, width: int, height: int) -> Tensor:
    """Camera-space points [..., 3] to continuous pixel coordinates (u, v) [..., 2]."""
    depth = (-points_cam[..., 2]).clamp_min(1e-6)  # behind the camera: far outside
    u = focal * points_cam[..., 0] / depth + 0.5 * width
    v = -focal * points_cam[..., 1] / depth + 0.5 * height
    return torch.stack([u, v], dim=-1)


def sample_features(features: Tensor, uv: Tensor, width: int, height: int) -> Tensor:
    """Bilinear features [B, M, C] at pixel coordinates uv [B, M, 2] of maps [B, C, h, w].

    The maps cover the whole image whatever their resolution; outside it the border
    value is used (pixelNeRF's padding).
    """
    scale = torch.tensor([2.0 / width, 2.0 / height], device=uv.device, dtype=uv.dtype)
    grid = (uv * scale - 1.0).unsqueeze(1)  # [B, 1, M, 2], align_corners=False convention
    sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)  # fmt: skip
    return sampled[:, :, 0].transpose(1, 2)
