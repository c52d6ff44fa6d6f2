"""The run's optimizer: torch's, DVGO's masked Adam, or Laplacian-smoothed uniform Adam."""

from atlas_core.engine.optimizers.choice import clip_gradients, freeze, make_optimizer
from atlas_core.engine.optimizers.masked_adam import MaskedAdam
from atlas_core.engine.optimizers.uniform_adam import UniformAdam

__all__ = ["MaskedAdam", "UniformAdam", "clip_gradients", "freeze", "make_optimizer"]
