"""Coarse-to-fine sampling with the run's own field (no second network).

NeRF's hierarchical sampling (Mildenhall et al. 2020, sec. 5.2) trains a separate coarse
field; for an SDF field the same network already knows where the surface is, so the
coarse pass here queries the run's field's ``density()`` without gradients (as NeuS and
VolSDF's sampler do, in a simpler form than VolSDF's error-bounded algorithm).
"""

from __future__ import annotations

import torch
from torch import Tensor

from atlas_core.api import (
    ConfigError,
    Field,
    RayBundle,
    RaySamples,
    Sampler,
    has_density,
    render_weights,
    sample_pdf,
    samples_from_bins,
    stratified_edges,
)


class FieldImportanceSampler(Sampler):
    """``coarse`` stratified bins, then ``fine`` more drawn from the field's own weights.

    The main pass sees the ``coarse + fine`` intervals of the merged edges.
    """

    def __init__(self, coarse: int = 32, fine: int = 32):
        super().__init__()
        if coarse < 1 or fine < 0:
            raise ValueError("coarse must be >= 1 and fine >= 0")
        self.coarse, self.fine = coarse, fine

    @torch.no_grad()
    def coarse_weights(self, rays: RayBundle, edges: Tensor, field: Field) -> Tensor:
        """Compositing weights [R, coarse] of the coarse bins under the current field."""
        samples = samples_from_bins(rays, edges)
        if not has_density(field):
            raise ConfigError(
                f"sampler 'importance' needs a field with density(); {type(field).__name__} "
                "has none"
            )
        density = field.density(samples.positions, samples.times)
        weights = render_weights(density, samples.deltas, samples.ray_indices, len(rays))
        return weights.view(len(rays), -1)

    def forward(self, rays: RayBundle, field: Field) -> tuple[RaySamples, dict[str, Tensor]]:
        """Coarse bins plus importance-sampled distances, merged and sorted per ray."""
        edges = stratified_edges(rays, self.coarse, self.training)
        if self.fine == 0:
            return samples_from_bins(rays, edges), {}
        weights = self.coarse_weights(rays, edges, field)
        fine = sample_pdf(edges, weights, self.fine, self.training)
        merged, _ = torch.sort(torch.cat([edges, fine], dim=-1), dim=-1)
        return samples_from_bins(rays, merged), {}
