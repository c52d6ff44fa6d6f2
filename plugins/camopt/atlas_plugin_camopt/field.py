"""Per-training-image pose corrections applied to the samples of training rays.

nerfstudio's SO3xR3 camera optimiser: image ``i`` has a 6-vector ``(w_i, t_i)``, zero at
the start; ``R_i = exp(w_i)`` (the SO(3) exponential map) and ``t_i`` a translation. A
training ray of image ``i`` with origin ``c`` (the camera centre) and direction ``d``
becomes the ray from ``c + t_i`` along ``R_i d``, so every sample moves rigidly about the
camera centre, ``x' = R_i (x - c) + c + t_i``: the refined camera-to-world pose is
``[R_i R | c + t_i]``. The wrapped field sees the moved samples and its gradients reach
the corrections. Rays of evaluation-mode renders (test views, videos, the viewer) keep
their given poses, as in nerfstudio.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from atlas_core.api import Field, PluginError, RayBundle, RaySamples, has_density, tag_parameter
from atlas_plugin_camopt.so3 import exp_so3

__all__ = ["PoseCorrection", "find_camopt", "reaches_positions", "refine"]


class PoseCorrection(Field):
    """``field`` seen through per-image rigid corrections of training rays."""

    def __init__(self, inner: nn.Module, capacity: int, lr_scale: float | None):
        super().__init__()
        self.inner = inner
        self.corrections = nn.Parameter(torch.zeros(capacity, 6))
        if lr_scale is None:  # camopt.lr = 0: the given poses stay
            self.corrections.requires_grad_(False)
        else:
            tag_parameter(self.corrections, lr_scale=lr_scale)
        self.register_buffer("num_images", torch.zeros((), dtype=torch.long))

    def set_num_images(self, count: int) -> None:
        """Record how many training images there are (for metrics and the saved poses)."""
        capacity = self.corrections.shape[0]
        if count > capacity:
            raise ValueError(f"{count} training images but camopt.max_images={capacity}; raise it")
        self.num_images.fill_(count)

    def rigid(self, cameras: Tensor) -> tuple[Tensor, Tensor]:
        """Rotations [K, 3, 3] and translations [K, 3] of cameras [K]."""
        if cameras.numel() and int(cameras.max()) >= self.corrections.shape[0]:
            raise PluginError(
                f"plugin 'camopt': camera index {int(cameras.max())} is beyond "
                f"camopt.max_images={self.corrections.shape[0]}; raise it"
            )
        vector = self.corrections[cameras]
        return exp_so3(vector[:, :3]), vector[:, 3:]

    def refined_poses(self, c2w: Tensor) -> Tensor:
        """The refined camera-to-world matrices [N, 4, 4] of the first N training images."""
        rot, trans = self.rigid(torch.arange(c2w.shape[0], device=c2w.device))
        refined = c2w.clone()
        refined[:, :3, :3] = rot.to(c2w.dtype) @ c2w[:, :3, :3]
        refined[:, :3, 3] = c2w[:, :3, 3] + trans.to(c2w.dtype)
        return refined

    def moved(self, samples: RaySamples) -> RaySamples:
        """The samples on their images' corrected rays."""
        rays = samples.rays
        rot, trans = self.rigid(rays.camera_indices)
        turn = lambda v: (rot @ v.unsqueeze(-1)).squeeze(-1)  # noqa: E731
        changes = {"origins": rays.origins + trans, "directions": turn(rays.directions)}
        viewdirs = getattr(rays, "viewdirs", None)
        if viewdirs is not None:
            changes["viewdirs"] = turn(viewdirs)
        moved_rays: RayBundle = replace(rays, **changes)
        points = getattr(samples, "moved", None)  # DisplacedSamples: positions given
        if points is None:
            return replace(samples, rays=moved_rays)
        index = samples.ray_indices
        centres = rays.origins[index]
        points = (rot[index] @ (points - centres).unsqueeze(-1)).squeeze(-1) + centres
        return replace(samples, rays=moved_rays, moved=points + trans[index])

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """The field at corrected samples (training rays) or at the given ones."""
        if not self.training:
            return self.inner(samples)
        return self.inner(self.moved(samples))


class PoseCorrectionDensity(PoseCorrection):
    """A PoseCorrection whose field has ``density()`` (occupancy grids)."""

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """The wrapped field's density at world positions (poses do not change it)."""
        if times is None:
            return self.inner.density(positions)
        return self.inner.density(positions, times)


def refine(inner: nn.Module, capacity: int, lr_scale: float | None) -> PoseCorrection:
    """Wrap ``inner``, keeping ``density()`` only when it has one."""
    kind = PoseCorrectionDensity if has_density(inner) else PoseCorrection
    return kind(inner, capacity, lr_scale)


def find_camopt(module: nn.Module) -> PoseCorrection | None:
    """The PoseCorrection inside ``module`` (a pipeline or field), or None."""
    return next((m for m in module.modules() if isinstance(m, PoseCorrection)), None)


def reaches_positions(field: nn.Module) -> bool:
    """Whether the field's outputs pass a gradient back to its rays (so poses can learn)."""
    count = 8
    generator = torch.Generator().manual_seed(0)  # leaves the run's random stream alone
    origins = (0.1 * torch.randn(count, 3, generator=generator)).requires_grad_()
    directions = nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    ones = torch.ones(count, 1)
    rays = RayBundle(origins, directions, ones * 0.0, ones * 0.2, ones * 1e-3,
                     torch.zeros(count, dtype=torch.long), times=ones * 0.5)  # fmt: skip
    samples = RaySamples(rays, ones * 0.0, ones * 0.1, torch.arange(count))
    was_training = field.training
    field.train()
    try:
        with torch.enable_grad():
            outputs = field(samples)
            total = sum(outputs[key].sum() for key in ("density", "rgb") if key in outputs)
            if not isinstance(total, Tensor) or not total.requires_grad:
                return False
            (grad,) = torch.autograd.grad(total, origins, allow_unused=True)
    finally:
        field.train(was_training)
    return grad is not None
