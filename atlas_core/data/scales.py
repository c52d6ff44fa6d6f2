"""Views at coarser scales, and rays drawn across them (Mip-NeRF's multiscale training).

Barron et al. 2021, "Mip-NeRF", sec. 5: the multiscale Blender dataset holds every image
at full, 1/2, 1/4 and 1/8 resolution (box-filtered), and training draws pixels from all of
them with each scale's loss weighted by its pixel area, so every scale counts equally.
Here each ray picks a scale uniformly instead (the same weighting in expectation) and is
cast through the centre of its coarse pixel with that pixel's footprint (``radii``).
"""

from __future__ import annotations

import torch

from atlas_core.data.images import downscale_rgba
from atlas_core.data.scene import SceneData, Views, make_rays
from atlas_core.errors import ConfigError
from atlas_core.nerf.cameras import INTRINSICS
from atlas_core.nerf.rays import RayBundle, cat_rays

__all__ = ["Pyramid", "multiscale_rays", "scale_factors", "scaled_views"]


def scale_factors(scales: int) -> list[int]:
    """Downscale factors ``1, 2, 4, ...`` of ``scales`` scales."""
    return [2**level for level in range(scales)]


def scaled_views(views: Views, factor: int) -> Views:
    """``views`` box-filtered by ``factor`` (rows and columns past a whole block dropped),
    with the focal length and any per-view intrinsics divided by it."""
    if factor == 1:
        return views
    if factor > min(views.height, views.width):
        raise ConfigError(
            f"a 1/{factor} scale of {views.width}x{views.height} images has no pixel; "
            "lower train.scales"
        )
    extras = dict(views.extras)
    if INTRINSICS in extras:
        extras[INTRINSICS] = extras[INTRINSICS] / factor
    images = downscale_rgba(views.images, factor)
    return Views(images, views.c2w, views.focal / factor, views.times, views.names, extras)


def multiscale_rays(pyramid: list[Views], count: int, scene: SceneData) -> RayBundle:
    """``count`` training rays, each at a scale of ``pyramid`` drawn uniformly, through a
    uniformly drawn pixel of that scale's images (its footprint grows with the scale)."""
    device = pyramid[0].c2w.device
    levels = torch.randint(len(pyramid), (count,))
    bundles = []
    for level, views in enumerate(pyramid):
        drawn = int((levels == level).sum())
        if drawn == 0:
            continue
        images = torch.randint(len(views), (drawn,)).to(device)
        rows = torch.randint(views.height, (drawn,)).to(device)
        cols = torch.randint(views.width, (drawn,)).to(device)
        bundles.append(make_rays(views, images, rows, cols, scene))
    return cat_rays(bundles)


class Pyramid:
    """Training views at ``scales`` scales (built once per set of views) and rays drawn
    across them."""

    def __init__(self, scales: int):
        self.factors = scale_factors(scales)
        self._levels: list[Views] = []

    def levels(self, views: Views) -> list[Views]:
        """``views`` at every scale, rebuilt only when ``views`` is another object."""
        if not self._levels or self._levels[0] is not views:
            self._levels = [scaled_views(views, factor) for factor in self.factors]
        return self._levels

    def rays(self, views: Views, count: int, scene: SceneData) -> RayBundle:
        """``count`` rays of ``views`` at uniformly drawn scales (``multiscale_rays``)."""
        return multiscale_rays(self.levels(views), count, scene)
