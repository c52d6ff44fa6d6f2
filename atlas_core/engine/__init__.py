"""The training engine: loop, run handle, evaluation, checkpoints, faults, distributed
training and optimisers. Plugins never import it; they see a run through ``Run``."""

__all__: list[str] = []
