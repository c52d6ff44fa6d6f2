"""Inverse-distance weighting of point features (Point-NeRF, Xu et al. 2022, sec. 3.2)."""

from __future__ import annotations

import torch
from torch import Tensor

from atlas_core.api import grid
from atlas_plugin_rig.neighbours import Neighbours


def idw_weights(positions: Tensor, points: Tensor, neighbours: Neighbours, eps: float) -> Tensor:
    """Normalised weights [S, k] proportional to 1 / |x - p_i| over the valid neighbours.

    Point-NeRF weighs each neighbour by its inverse distance to the sample; ``eps`` keeps
    the weight (and its gradient) finite where a sample sits on a point. The weights
    depend on both the sample and the point positions, so both receive gradients; a
    sample without a valid neighbour gets all-zero weights.
    """
    count, k = neighbours.index.shape
    near = points.index_select(0, neighbours.index.view(-1)).view(count, k, 3)
    distance = torch.sqrt((positions[:, None, :] - near).square().sum(-1) + eps * eps)
    inverse = neighbours.valid / distance
    return inverse / inverse.sum(-1, keepdim=True).clamp_min(1e-12)


def interpolate(
    features: Tensor, neighbours: Neighbours, weights: Tensor, sparse: bool = False
) -> Tensor:
    """Weighted sums [S, F] of the neighbours' features (one bag of k rows per sample);
    ``sparse``: the features' gradient holds only the rows the samples touched."""
    if not len(weights):
        return features.new_zeros(0, features.shape[1])
    return grid.weighted_rows(features, neighbours.index, weights, sparse)
