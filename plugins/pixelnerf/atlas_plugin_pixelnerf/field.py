"""The pixelNeRF field: an MLP conditioned on CNN features of the source views.

Yu et al. 2021, pixelNeRF, sec. 4: for each sample x and each source view i, x and the
ray direction d are taken into view i's camera frame, x is projected into the image and
the encoder's feature map W_i is sampled there (bilinearly). The MLP f1 sees
(gamma(P_i x), P_i d) with the feature added through a linear layer in each of its first
residual blocks; its per-view hidden states are average-pooled, and the remaining
blocks f2 decode density and colour (eq. 3-4 and the ResNet MLP of the supplement).

Which object and source views a ray is conditioned on comes from ``rays.extras``:
``object`` (bank index), and ``sources`` [R, >=S] or else ``view``: the first S views
of the object other than the ray's own. Rays without extras (free cameras, videos) show
the first held-out object from its first S views. On data kinds other than
``pixel-single`` the scene's train views are the only object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from atlas_core.api import (
    Field,
    PositionalEncoding,
    RayBundle,
    RaySamples,
    plugin_options,
    protocol_background,
)
from atlas_plugin_pixelnerf.data import PixelScene, one_object_bank
from atlas_plugin_pixelnerf.encoder import FeaturePyramidEncoder
from atlas_plugin_pixelnerf.options import PixelNeRFOptions
from atlas_plugin_pixelnerf.projection import (
    project,
    rotate_to_camera,
    sample_features,
    world_to_camera,
)

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

NAME = "pixelnerf"
FREQUENCIES = 6  # Yu et al. 2021, supp.: 6 frequencies for camera-frame points


class ResidualLinear(nn.Module):
    """x + fc1(relu(fc0(relu(x)))), the block of pixelNeRF's ResNet MLP."""

    def __init__(self, width: int):
        super().__init__()
        self.fc0 = nn.Linear(width, width)
        self.fc1 = nn.Linear(width, width)
        nn.init.zeros_(self.fc1.weight)  # each block starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        """Same shape in and out."""
        return x + self.fc1(F.relu(self.fc0(F.relu(x))))


class PixelNeRFField(Field):
    """Density and colour of points seen through the source views' image features."""

    def __init__(
        self,
        context: BuildContext,
        width: int = 64,
        blocks: int = 4,
        combine_at: int = 2,
        encoder_width: int = 16,
        encoder_stages: int = 2,
        image_features: bool = False,
    ):
        super().__init__()
        scene = context.scene
        bank = scene.bank if isinstance(scene, PixelScene) else None
        if bank is None:  # another data kind: its train views are one object
            bank = one_object_bank(context.scene.split("train"))
        if width < 1 or blocks < 1 or not 1 <= combine_at <= blocks:
            raise ValueError("need width >= 1, blocks >= 1 and 1 <= combine_at <= blocks")
        self.num_sources = plugin_options(context.config, NAME, PixelNeRFOptions).source_views
        if self.num_sources >= bank.views_per_object:
            raise ValueError(f"pixelnerf.source_views={self.num_sources} leaves no target "
                             f"view (objects have {bank.views_per_object} views)")  # fmt: skip
        self.register_buffer("images", bank.images, persistent=False)
        self.register_buffer("cameras", bank.c2w, persistent=False)
        self.focal = bank.focal
        self.default_object = bank.test_objects[0] if bank.test_objects else 0
        self.background = 0.0 if protocol_background(context.config) == "black" else 1.0
        self.encoder = FeaturePyramidEncoder(encoder_width, encoder_stages, image_features)
        encoding = context.config.encoding
        if encoding.name == "positional" and not encoding.options:
            self.encoding = PositionalEncoding(3, FREQUENCIES)
        else:  # the run's encoding, as chosen (fourier, siren, other frequencies, ...)
            self.encoding = context.make_encoding(3)
        self.combine_at = combine_at
        self.lin_in = nn.Linear(self.encoding.out_dim + 3, width)
        self.lin_latent = nn.ModuleList(
            nn.Linear(self.encoder.out_dim, width) for _ in range(combine_at)
        )
        self.blocks = nn.ModuleList(ResidualLinear(width) for _ in range(blocks))
        self.lin_out = nn.Linear(width, 4)

    @property
    def image_size(self) -> tuple[int, int]:
        """Width and height of the source images."""
        return self.images.shape[3], self.images.shape[2]

    def conditioning(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Per-ray object [R] and source views [R, S] (see the module docstring)."""
        count, device, s = len(rays), rays.origins.device, self.num_sources
        objects = rays.extras.get("object")
        if objects is None:
            objects = torch.full((count,), self.default_object, device=device)
        sources = rays.extras.get("sources")
        if sources is not None:
            if sources.shape[1] < s:
                raise ValueError(f"rays carry {sources.shape[1]} source views, need {s}")
            return objects, sources[:, :s]
        first = torch.arange(s, device=device).expand(count, s)
        view = rays.extras.get("view")
        if view is None:
            return objects, first
        return objects, first + (first >= view[:, None]).long()  # skip the ray's own view

    def source_images(self, objects: Tensor, sources: Tensor) -> Tensor:
        """Source images [K * S, 3, H, W] over the run's background."""
        rgba = self.images[objects[:, None], sources].float() / 255.0  # [K, S, H, W, 4]
        alpha = rgba[..., 3:]
        rgb = rgba[..., :3] * alpha + self.background * (1 - alpha)
        return rgb.flatten(0, 1).permute(0, 3, 1, 2)

    def view_inputs(self, samples: RaySamples) -> tuple[Tensor, Tensor, Tensor]:
        """Per sample and source view: camera-frame points, directions, features [N, S, .]."""
        objects, sources = self.conditioning(samples.rays)
        keys, group = torch.unique(torch.cat([objects[:, None], sources], 1), dim=0,
                                   return_inverse=True)  # fmt: skip
        features = self.encoder(self.source_images(keys[:, 0], keys[:, 1:]))
        s, (width, height) = self.num_sources, self.image_size
        features = features.unflatten(0, (len(keys), s))
        group = group[samples.ray_indices]
        positions, directions = samples.positions, samples.directions
        count = positions.shape[0]
        points = positions.new_zeros(count, s, 3)
        dirs = positions.new_zeros(count, s, 3)
        latent = positions.new_zeros(count, s, features.shape[2])
        for g, key in enumerate(keys):
            index = (group == g).nonzero().squeeze(1)
            cams = self.cameras[key[0], key[1:]][:, None]  # [S, 1, 4, 4]
            p = world_to_camera(positions[index][None], cams)  # [S, M, 3]
            d = rotate_to_camera(directions[index][None], cams)
            uv = project(p, self.focal, width, height)
            f = sample_features(features[g], uv, width, height)  # [S, M, C]
            points = points.index_copy(0, index, p.transpose(0, 1))
            dirs = dirs.index_copy(0, index, d.transpose(0, 1))
            latent = latent.index_copy(0, index, f.transpose(0, 1))
        return points, dirs, latent

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density (softplus) and sigmoid colour per sample."""
        points, dirs, latent = self.view_inputs(samples)
        encoded = self.encoding(points.flatten(0, 1)).unflatten(0, points.shape[:2])
        h = self.lin_in(torch.cat([encoded, dirs], dim=-1))  # [N, S, width]
        for i, block in enumerate(self.blocks):
            if i == self.combine_at:
                h = h.mean(dim=1)  # average-pool over source views (eq. 4)
            if i < self.combine_at:
                h = h + self.lin_latent[i](latent)
            h = block(h)
        if self.combine_at == len(self.blocks):
            h = h.mean(dim=1)
        raw = self.lin_out(F.relu(h))
        return {"density": F.softplus(raw[:, :1] - 1.0), "rgb": torch.sigmoid(raw[:, 1:])}
