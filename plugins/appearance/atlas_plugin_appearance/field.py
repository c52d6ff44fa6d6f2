"""A per-image affine colour correction around any field.

Each training image ``i`` has a learned code ``z_i`` (NeRF-W's appearance embedding,
Martin-Brualla et al. 2021; nerfacto's). A small MLP maps it to a 3x3 matrix and a bias
that correct the colour of every sample of that image's rays, ``rgb' = (I + A) rgb + b``:
the exposure and white-balance compensation of Urban Radiance Fields (Rematas et al. 2022,
sec. 3.2). The correction is linear in ``rgb``, so it commutes with compositing and works
with any field without touching its colour head; it is the identity at initialisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from atlas_core.api import Field, PluginError, RaySamples, has_density, tag_parameter

__all__ = ["AppearanceDensityField", "AppearanceField", "find_appearance", "training_views"]

PARAMS = 12  # 3x3 matrix and a bias


class AppearanceField(Field):
    """``field`` whose ``rgb`` is corrected by the code of each ray's image.

    Training rays (``self.training``) use their camera's code; in evaluation mode
    (evaluation, videos, the viewer) every ray gets the held-out correction: the mean of
    the training images' codes (``eval="mean"``) or none (``eval="identity"``). Camera
    indices of test views index the test split, so they are never used to look up codes.
    """

    def __init__(
        self,
        inner: nn.Module,
        dim: int,
        hidden: int,
        capacity: int,
        eval_mode: str,
        lr_scale: float = 1.0,
    ):
        super().__init__()
        self.inner = inner
        self.eval_mode = eval_mode
        # small random codes tell images apart from the first step; the head's last layer
        # is zero, so every correction starts as the identity
        self.codes = nn.Parameter(0.1 * torch.randn(capacity, dim))
        if hidden > 0:
            last = nn.Linear(hidden, PARAMS)
            self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), last)
        else:
            last = nn.Linear(dim, PARAMS)
            self.head = last
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        for param in (self.codes, *self.head.parameters()):
            tag_parameter(param, lr_scale=lr_scale)
        self.register_buffer("num_images", torch.zeros((), dtype=torch.long))
        self.per_image = False  # True: evaluation-mode renders of training views

    def set_num_images(self, count: int) -> None:
        """Record how many training images there are (the held-out code averages them)."""
        capacity = self.codes.shape[0]
        if count > capacity:
            raise ValueError(
                f"{count} training images but appearance.max_images={capacity}; raise it"
            )
        self.num_images.fill_(count)

    def mean_code(self) -> Tensor:
        """The held-out views' code: the mean over the training images' codes."""
        count = int(self.num_images) or self.codes.shape[0]
        return self.codes[:count].mean(dim=0)

    def transforms(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Matrices [K, 3, 3] and biases [K, 3] for codes [K, dim]."""
        params = self.head(codes)
        eye = torch.eye(3, device=codes.device, dtype=params.dtype)
        return eye + params[:, :9].view(-1, 3, 3), params[:, 9:]

    def ray_transforms(self, samples: RaySamples) -> tuple[Tensor, Tensor] | None:
        """Per-ray matrices and biases, or None when no correction applies."""
        if self.training or self.per_image:
            cameras = samples.rays.camera_indices
            if cameras.numel() and int(cameras.max()) >= self.codes.shape[0]:
                raise PluginError(
                    f"plugin 'appearance': camera index {int(cameras.max())} is beyond "
                    f"appearance.max_images={self.codes.shape[0]}; raise it"
                )
            return self.transforms(self.codes[cameras])
        if self.eval_mode == "identity":
            return None
        matrix, bias = self.transforms(self.mean_code()[None])
        return matrix.expand(samples.num_rays, 3, 3), bias.expand(samples.num_rays, 3)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """The wrapped field's outputs with ``rgb`` corrected."""
        outputs = dict(self.inner(samples))
        found = self.ray_transforms(samples)
        if found is None:
            return outputs
        if "rgb" not in outputs:
            raise PluginError(
                f"plugin 'appearance': field {type(self.inner).__name__} gives no 'rgb' to correct"
            )
        matrix, bias = found
        index = samples.ray_indices
        rgb = outputs["rgb"]
        corrected = (matrix[index] @ rgb.unsqueeze(-1)).squeeze(-1) + bias[index]
        outputs["rgb"] = corrected
        return outputs


class AppearanceDensityField(AppearanceField):
    """An AppearanceField whose field has ``density()`` (occupancy grids)."""

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """The wrapped field's density (appearance changes colour only)."""
        if times is None:
            return self.inner.density(positions)
        return self.inner.density(positions, times)


def wrap(inner: nn.Module, **options: Any) -> AppearanceField:
    """Wrap ``inner`` (options as ``AppearanceField``'s), keeping ``density()`` only when
    it has one."""
    kind = AppearanceDensityField if has_density(inner) else AppearanceField
    return kind(inner, **options)


def find_appearance(module: nn.Module) -> AppearanceField | None:
    """The AppearanceField inside ``module`` (a pipeline or field), or None."""
    return next((m for m in module.modules() if isinstance(m, AppearanceField)), None)


@contextmanager
def training_views(module: nn.Module) -> Iterator[None]:
    """Within it, evaluation-mode renders use each ray's own code: for rendering
    *training* views (whose camera indices index the training split)."""
    found = find_appearance(module)
    if found is None:
        yield
        return
    found.per_image = True
    try:
        yield
    finally:
        found.per_image = False
