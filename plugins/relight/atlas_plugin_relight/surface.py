"""Finding the run's SDF, and the ``surface`` sampler: one sample per ray on the surface."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from atlas_core.api import ConfigError, HasSDF, RayBundle, RaySamples, Sampler, first_with
from atlas_plugin_relight.intersect import intersect
from atlas_plugin_relight.options import RelightOptions

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

HIT = "relight_hit"  # rays.extras key: 1 where the ray meets the surface, else 0


def find_sdf(field: nn.Module, what: str, field_name: str) -> nn.Module:
    """The field itself when it has an ``sdf()`` method, else a ConfigError naming why."""
    module = first_with(field, HasSDF)
    if module is not None:
        if module is not field:  # a wrapper (say, dnerf's deformation) would be bypassed
            raise ConfigError(
                f"{what} traces the SDF of {type(module).__name__}, but the run's field is "
                f"wrapped in {type(field).__name__} (a plugin's atlas_wrap_field, e.g. dnerf), "
                "which surface tracing would ignore; run without the wrapping plugin"
            )
        return module
    raise ConfigError(
        f"{what} needs a field with an SDF, but field '{field_name}' has none; "
        "enable the volsdf plugin (--plugins volsdf,relight) or --set field=volsdf"
    )


class SurfaceSampler(Sampler):
    """Intersect each ray with the field's zero level set (``relight.intersect``).

    A ray that hits is sampled at the surface; one that misses at the point of its
    smallest SDF (for the silhouette terms). ``rays.extras['relight_hit']`` says which.
    """

    def __init__(self, context: BuildContext):
        super().__init__()
        from atlas_core.api import plugin_options

        options = plugin_options(context.config, "relight", RelightOptions)
        self.method, self.steps = options.intersect, options.steps
        name = context.config.field.name
        self._sdf = [find_sdf(context.field_module(), "sampler 'surface'", name)]

    def forward(self, rays: RayBundle, field: nn.Module) -> tuple[RaySamples, dict[str, Tensor]]:
        """One packed sample per ray: at the surface, or nearest to it for misses."""
        sdf = self._sdf[0].sdf
        hits = intersect(self.method, sdf, rays.origins, rays.directions, rays.near, rays.far,
                         self.steps)  # fmt: skip
        t = torch.where(hits.hit[:, None], hits.t, hits.t_min)
        extras = {**rays.extras, HIT: hits.hit.float()}
        marked = dataclasses.replace(rays, extras=extras)
        indices = torch.arange(len(rays), device=t.device)
        return RaySamples(rays=marked, t_starts=t, t_ends=t, ray_indices=indices), {}
