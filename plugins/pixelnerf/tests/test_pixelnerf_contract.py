"""The shared contract tests for the pixelnerf field, on an in-memory multi-object scene."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from atlas_plugin_pixelnerf.data import ObjectBank, PixelScene, split_views

from atlas_core.api import SceneData, look_at
from atlas_core.testing import FieldContract


def memory_scene(objects: int = 3, views: int = 3, size: int = 8) -> PixelScene:
    """Random images of ``objects`` x ``views`` cameras on a circle; the last object is held out."""
    generator = torch.Generator().manual_seed(0)
    shape = (objects, views, size, size, 4)
    images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    poses = []
    for i in range(views):
        angle = 2 * math.pi * i / views
        eye = torch.tensor([4 * math.cos(angle), 4 * math.sin(angle), 1.0])
        poses.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    c2w = torch.stack(poses).expand(objects, -1, -1, -1).contiguous()
    focal = 0.5 * size / math.tan(0.5 * 0.69)
    names = [f"obj_{i}" for i in range(objects)]
    bank = ObjectBank(images, c2w, focal, names, [objects - 1])
    splits = {
        "train": split_views(bank, list(range(objects - 1)), 0),
        "test": split_views(bank, [objects - 1], 1),
    }
    return PixelScene(splits, name="memory", bank=bank)


class TestPixelNeRFField(FieldContract):
    name = "pixelnerf"
    plugins = ("pixelnerf",)
    options: ClassVar[dict[str, object]] = {
        "width": 16,
        "blocks": 3,
        "combine_at": 2,
        "encoder_width": 4,
        "encoder_stages": 1,
    }
    settings: ClassVar[dict[str, object]] = {"sampler.samples": 8}

    def make_scene(self) -> SceneData:
        """Source images for the field to condition on."""
        return memory_scene()


class TestPixelNeRFTwoSources(TestPixelNeRFField):
    settings: ClassVar[dict[str, object]] = {"sampler.samples": 8, "pixelnerf.source_views": 2}
