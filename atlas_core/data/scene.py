"""In-memory scenes: posed images per split, and rays drawn from them.

A scene's ``space`` says where its rays live (``atlas_core.data.scene_type`` picks it):
``box``, world rays clipped to the scene box; ``ndc``, forward-facing rays in NeRF's
normalised device coordinates (``t`` 0..1, box about ``[-1, 1]^3``); ``contract``,
unbounded rays out to ``far`` whose sample positions are contracted into ``[-2, 2]^3``
(Mip-NeRF 360), the box being that contracted cube.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from atlas_core.nerf.cameras import INTRINSICS, pixel_rays
from atlas_core.nerf.ndc import NDCFrame, ndc_rays
from atlas_core.nerf.rays import RayBundle, clip_to_box

__all__ = ["SPACES", "SceneData", "Views", "camera_rays", "image_rays", "make_rays"]

SPACES = ("box", "ndc", "contract")


@dataclass
class Views:
    """One split: N posed images of one size, NeRF/Blender camera convention."""

    images: Tensor  # [N, H, W, 4] uint8, straight alpha
    c2w: Tensor  # [N, 4, 4] float32
    focal: float
    times: Tensor | None = None  # [N] in [0, 1]
    names: list[str] = field(default_factory=list)
    # per-view values a plugin's data kind adds, each [N, ...]; rays carry them in ``extras``
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.images.shape[1]

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.images.shape[2]

    def __len__(self) -> int:
        return self.images.shape[0]

    def intrinsics(self, index: int) -> tuple[float, float, float, float]:
        """``(fx, fy, cx, cy)`` of view ``index`` (the shared focal and centre without
        ``extras[INTRINSICS]``)."""
        intrinsics = self.extras.get(INTRINSICS)
        if intrinsics is not None:
            fx, fy, cx, cy = (float(v) for v in intrinsics[index].tolist())
            return fx, fy, cx, cy
        return self.focal, self.focal, 0.5 * self.width, 0.5 * self.height

    def to(self, device: torch.device | str) -> Views:
        """Copy to a device."""
        times = None if self.times is None else self.times.to(device)
        extras = {key: value.to(device) for key, value in self.extras.items()}
        return Views(
            self.images.to(device), self.c2w.to(device), self.focal, times, self.names, extras
        )


@dataclass
class SceneData:
    """A scene's splits plus the ray range and bounding box of its content.

    ``space`` (one of ``SPACES``) is where rays and the box live; in ``ndc`` ``near``/``far``
    are NDC ``t`` (0 and 1) and ``ndc_frame`` the reference camera that defines NDC.
    ``measured_depths``: near/far were measured on the content (LLFF bounds, sparse
    points), so they tell an unbounded scene from an object.
    """

    splits: dict[str, Views]
    near: float = 2.0
    far: float = 6.0
    bounds: tuple[float, float, float, float, float, float] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    name: str = "scene"
    space: str = "box"
    ndc_frame: NDCFrame | None = None
    measured_depths: bool = False

    def split(self, name: str) -> Views:
        """A split by name; falls back to train for missing val/test splits."""
        return self.splits.get(name) or self.splits["train"]


def make_rays(
    views: Views,
    image_indices: Tensor,
    rows: Tensor,
    cols: Tensor,
    scene: SceneData,
    with_targets: bool = True,
    offsets: Tensor | None = None,
) -> RayBundle:
    """Rays through pixels ``(rows, cols)`` of images ``image_indices`` in the scene's
    ``space``: clipped to the scene's box (world or NDC), or unclipped out to ``far`` for
    contracted scenes; per-view ``extras[INTRINSICS]``, when present, replace
    ``views.focal``. ``offsets`` [R, 2] move each ray ``(dx, dy)`` pixels from its pixel's
    centre (within ``[-0.5, 0.5)`` it stays in the pixel, whose target it keeps)."""
    c2w = views.c2w[image_indices]
    intrinsics = views.extras.get(INTRINSICS)
    intrinsics = None if intrinsics is None else intrinsics[image_indices]
    x, y = cols, rows
    if offsets is not None:
        x, y = cols + offsets[:, 0], rows + offsets[:, 1]
    origins, dirs, radii = pixel_rays(c2w, x, y, views.focal, views.width, views.height, intrinsics)
    ones = torch.ones_like(radii)
    viewdirs = None
    if scene.space == "ndc":  # NeRF appendix C: t' from 0 (near plane) to 1 (infinity)
        if scene.ndc_frame is None:
            raise ValueError(f"{scene.name}: an NDC scene needs its ndc_frame")
        viewdirs = dirs
        origins, dirs = ndc_rays(origins, dirs, scene.ndc_frame)
        near = ones * min(max(scene.near, 0.0), 1.0)
        far = ones * min(max(scene.far, 0.0), 1.0)
        near, far = clip_to_box(origins, dirs, near, far, scene.bounds)
    elif scene.space == "contract":  # the contracted box holds all of space
        near, far = ones * scene.near, ones * scene.far
    else:
        near, far = clip_to_box(origins, dirs, ones * scene.near, ones * scene.far, scene.bounds)
    times = None if views.times is None else views.times[image_indices][:, None]
    rgba = None
    if with_targets:
        rgba = views.images[image_indices, rows, cols].float() / 255.0
    extras = {key: value[image_indices] for key, value in views.extras.items()}
    return RayBundle(
        origins=origins,
        directions=dirs,
        near=near,
        far=far,
        radii=radii,
        camera_indices=image_indices,
        times=times,
        rgba=rgba,
        extras=extras,
        viewdirs=viewdirs,
        contracted=scene.space == "contract",
    )


def image_rays(
    views: Views, index: int, scene: SceneData, offset: tuple[float, float] = (0.0, 0.0)
) -> RayBundle:
    """All rays of one image, row-major, each ``offset`` ``(dx, dy)`` pixels from its
    pixel's centre."""
    device = views.c2w.device
    rows, cols = torch.meshgrid(
        torch.arange(views.height, device=device),
        torch.arange(views.width, device=device),
        indexing="ij",
    )
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    indices = torch.full_like(rows, index)
    offsets = None
    if offset != (0.0, 0.0):
        offsets = torch.tensor(offset, device=device).expand(len(rows), 2)
    return make_rays(views, indices, rows, cols, scene, offsets=offsets)


def camera_rays(c2w: Tensor, focal: float, width: int, height: int, scene: SceneData) -> RayBundle:
    """All rays of a free camera (no targets), row-major."""
    rows, cols = torch.meshgrid(
        torch.arange(height, device=c2w.device),
        torch.arange(width, device=c2w.device),
        indexing="ij",
    )
    views = Views(torch.zeros(1, height, width, 4, dtype=torch.uint8), c2w[None], focal)
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    return make_rays(views, torch.zeros_like(rows), rows, cols, scene, with_targets=False)
