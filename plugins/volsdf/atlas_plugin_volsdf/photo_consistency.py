"""Multi-view photometric consistency of surface patches (Geo-NeuS, Fu et al. 2022, sec. 3.3).

Each opaque training ray's surface point ``x`` (its expected depth) and the SDF's normal
``n`` there span a small square patch on the tangent plane, one pixel of the ray's image
per step. The patch is projected into the ray's own image and into the ``NEIGHBOURS``
training views nearest it; the loss is ``1 - NCC`` (normalised cross-correlation of grey
values) between the ray's patch and the better half of the other views' patches, so a
view that sees something else in front (an occlusion) does not count. NCC ignores a
patch's brightness and contrast: dark, shadowed texture places the surface as firmly as
bright texture, where the colour loss's gradient is small. It assumes the lighting does
not change between the images (DTU's scans, photos); it is off unless weighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import ConfigError, Loss, RayBundle
from atlas_plugin_volsdf.losses import required_sdf_module, sdf_gradients_at, surface_rays

if TYPE_CHECKING:
    from atlas_core.api import BuildContext, Views

# source views per training view, nearest by direction from the scene's centre (generated
# DTU-layout scans, 600 s, Chamfer: 4 gave 1.17% and 1.17% at 160 px, 1.10% at 200 px;
# 8 gave 1.16% and 1.04%)
NEIGHBOURS = 8
HALF = 2  # the patch is (2 * HALF + 1)^2 points, one pixel apart (5 x 5)
MAX_RAYS = 512  # surface points per step
MIN_STD = 0.005  # grey-value spread below which a patch has no texture to match
EPS = 1e-6


def nearest_views(centres: Tensor, middle: Tensor, count: int) -> Tensor:
    """For each camera centre [N, 3], the ``count`` others seen at the smallest angle from
    ``middle`` [3]: [N, count] indices."""
    directions = torch.nn.functional.normalize(centres - middle, dim=-1)
    cosines = directions @ directions.T
    cosines.fill_diagonal_(-2.0)
    return cosines.topk(min(count, len(centres) - 1), dim=-1).indices


def ncc(reference: Tensor, others: Tensor) -> Tensor:
    """Normalised cross-correlation of patches [R, P] with patches [R, K, P]: [R, K]."""
    ref = reference - reference.mean(dim=-1, keepdim=True)
    other = others - others.mean(dim=-1, keepdim=True)
    product = (ref[:, None, :] * other).sum(dim=-1)
    norms = ref.square().sum(dim=-1)[:, None] * other.square().sum(dim=-1)
    return product / (norms + EPS).sqrt()


class PatchImages(nn.Module):
    """The training images in grey and their cameras, sampled bilinearly at pixel positions."""

    def __init__(self, views: Views):
        super().__init__()
        self.height, self.width = views.height, views.width
        # one byte a pixel (a DTU scan's 49 images at 1600 x 1200: 94 MB, not 376 in floats)
        grey = views.images[..., :3].float().mean(dim=-1).round().to(torch.uint8).reshape(-1)
        intrinsics = torch.tensor([views.intrinsics(i) for i in range(len(views))])
        self.register_buffer("grey", grey, persistent=False)
        self.register_buffer("c2w", views.c2w.float(), persistent=False)
        self.register_buffer("intrinsics", intrinsics.float(), persistent=False)

    def project(self, points: Tensor, view: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Pixel coordinates (u right, v down, centres at +0.5) and depth of points
        [R, ..., 3] in views [R, ...] (the camera looks along its -Z)."""
        c2w = self.c2w[view]
        local = ((points - c2w[..., :3, 3])[..., None, :] @ c2w[..., :3, :3]).squeeze(-2)
        depth = -local[..., 2]
        safe = torch.where(depth > EPS, depth, torch.ones_like(depth))
        fx, fy, cx, cy = self.intrinsics[view].unbind(-1)
        return fx * local[..., 0] / safe + cx, -fy * local[..., 1] / safe + cy, depth

    def inside(self, u: Tensor, v: Tensor, depth: Tensor) -> Tensor:
        """Which projections land in front of the camera and inside its image."""
        in_u = (u >= 0.5) & (u <= self.width - 0.5)
        return (depth > EPS) & in_u & (v >= 0.5) & (v <= self.height - 0.5)

    def sample(self, u: Tensor, v: Tensor, view: Tensor) -> Tensor:
        """Bilinear grey values at pixel coordinates of views (differentiable in u, v)."""
        x = (u - 0.5).clamp(0, self.width - 1)
        y = (v - 0.5).clamp(0, self.height - 1)
        x0 = x.detach().floor().clamp(max=self.width - 2)
        y0 = y.detach().floor().clamp(max=self.height - 2)
        fx, fy = x - x0, y - y0
        base = (view * self.height + y0.long()) * self.width + x0.long()
        width = self.width

        def at(index: Tensor) -> Tensor:
            return self.grey[index].to(u.dtype) / 255.0

        top = at(base) * (1 - fx) + at(base + 1) * fx
        bottom = at(base + width) * (1 - fx) + at(base + width + 1) * fx
        return top * (1 - fy) + bottom * fy


class PhotoConsistencyLoss(Loss):
    """``1 - NCC`` of each surface point's tangent patch between its view and its neighbours."""

    def __init__(self, context: BuildContext):
        super().__init__()
        module = required_sdf_module(context, "loss 'photo_consistency'")
        if context.scene.space != "box":
            raise ConfigError(
                f"loss 'photo_consistency' needs world-space rays; this scene's rays are "
                f"{context.scene.space!r} (an object scene in a box)"
            )
        self._sdf = [module]  # a plain list: the field is not registered twice
        views = context.scene.split("train")
        if len(views) < 2:
            raise ConfigError("loss 'photo_consistency' needs at least two training views")
        self.images = PatchImages(views)
        bounds = torch.tensor(context.scene.bounds, dtype=torch.float32)
        middle = 0.5 * (bounds[:3] + bounds[3:])
        neighbours = nearest_views(self.images.c2w[:, :3, 3], middle, NEIGHBOURS)
        self.register_buffer("neighbours", neighbours, persistent=False)
        steps = torch.arange(-HALF, HALF + 1, dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(-1, 2)
        self.register_buffer("offsets", grid, persistent=False)

    def patches(self, points: Tensor, normals: Tensor, view: Tensor, depth: Tensor) -> Tensor:
        """Patch points [R, P, 3] on the tangent planes, one pixel of ``view`` apart."""
        side = self.images.c2w[view, :3, 0]
        first = torch.nn.functional.normalize(
            side - (side * normals).sum(-1, keepdim=True) * normals, dim=-1
        )
        second = torch.linalg.cross(normals, first)
        pixel = (depth / self.images.intrinsics[view, 0])[:, None, None]
        plane = (
            self.offsets[None, :, :1] * first[:, None] + self.offsets[None, :, 1:] * second[:, None]
        )
        return points[:, None, :] + pixel * plane

    def forward(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> Tensor:
        """The mean over textured surface points seen by a neighbour (zero without any)."""
        zero = outputs["acc"].new_zeros(())
        index = surface_rays(outputs, MAX_RAYS)
        if not len(index):
            return zero
        depth = outputs["depth"].view(-1)[index]  # with a graph: the points move with it
        points = rays.points(index, depth)
        gradients = sdf_gradients_at(self._sdf[0], points)
        if not len(gradients):  # no SDF yet (a grid's density warm-up)
            return zero
        normals = torch.nn.functional.normalize(gradients, dim=-1)
        view = rays.camera_indices[index]
        patch = self.patches(points, normals, view, depth.detach())  # [R, P, 3]
        views = torch.cat([view[:, None], self.neighbours[view]], dim=1)  # [R, 1 + K]
        grid_views = views[:, :, None].expand(-1, -1, patch.shape[1])
        stacked = patch[:, None].expand(-1, views.shape[1], -1, -1)
        u, v, z = self.images.project(stacked, grid_views)
        grey = self.images.sample(u, v, grid_views)  # [R, 1 + K, P]
        seen = self.images.inside(u, v, z).all(dim=-1)
        centres = self.images.c2w[views, :3, 3]
        facing = ((centres - points[:, None]) * normals[:, None]).sum(-1) > 0
        usable = (seen & facing)[:, 1:]
        textured = seen[:, 0] & (grey[:, 0].detach().std(dim=-1) > MIN_STD)
        cost = 1.0 - ncc(grey[:, 0], grey[:, 1:])
        cost = torch.where(usable, cost, torch.full_like(cost, float("inf")))
        ranked = cost.sort(dim=-1).values
        kept = (usable.sum(-1, keepdim=True) + 1) // 2  # the better half, at least one
        take = torch.arange(ranked.shape[1], device=ranked.device)[None] < kept
        keep = textured & (kept[:, 0] > 0)
        if not keep.any():
            return zero
        chosen = torch.where(take, ranked, torch.zeros_like(ranked))[keep]
        return (chosen.sum(-1) / kept[keep, 0]).mean()
