"""Training batches as pixelNeRF draws them: a few objects, their source views, and
rays from the other views of the same objects (Yu et al. 2021, sec. 4.1 and supp.)."""

from __future__ import annotations

import torch

from atlas_core.api import Views
from atlas_plugin_pixelnerf.data import ObjectBank


class ObjectBatches:
    """Each call gives the views one step draws its rays from, with their sources."""

    def __init__(self, bank: ObjectBank, sources: int, objects: int, device: torch.device):
        test = set(bank.test_objects)
        self.objects = torch.tensor([o for o in range(len(bank.names)) if o not in test])
        self.bank, self.sources, self.device = bank, sources, device
        self.per_batch = min(objects, len(self.objects))

    def next(self) -> Views:
        """Random objects; per object, S random source views; its other views as targets.

        Uses the global torch RNG, so a resumed run continues the same way.
        """
        bank, s = self.bank, self.sources
        chosen = self.objects[torch.randperm(len(self.objects))[: self.per_batch]]
        count = bank.views_per_object
        order = torch.stack([torch.randperm(count) for _ in chosen])  # [B, V]
        targets, sources = order[:, s:], order[:, :s]
        obj = chosen[:, None].expand_as(targets).reshape(-1)
        view = targets.reshape(-1)
        extras = {
            "object": obj,
            "view": view,
            "sources": sources.repeat_interleave(count - s, dim=0),
        }
        views = Views(bank.images[obj, view], bank.c2w[obj, view], bank.focal, extras=extras)
        return views.to(self.device)
