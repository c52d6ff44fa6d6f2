"""The ``pixel-single`` data kind: many objects, each with its own posed views.

All images stay in an :class:`ObjectBank` (``[objects, views, H, W, 4]``) that the
pixelNeRF field reads its source views from. Splits are views with per-view extras
``object`` (bank index) and ``view`` (index within the object):

- ``train``: every view of the training objects (the plugin's batch hook narrows each
  step to a few objects and adds their source views, see ``batches.py``);
- ``test``: views 1.. of the held-out objects; view 0 of each is its source view
  (with ``pixelnerf.source_views`` = S > 1, the next S - 1 views other than the target).

A plain blender folder (no ``objects.json``) is read as one object: its train views
are the bank, and its test views are conditioned on its first S train views (the same
one-object bank the field builds on any other data kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from atlas_core.api import DataError, SceneData, Views, load_blender, load_split, read_json
from atlas_plugin_pixelnerf.synth import INDEX


@dataclass
class ObjectBank:
    """Every object's images [O, V, H, W, 4] (uint8, straight alpha) and c2w [O, V, 4, 4]."""

    images: Tensor
    c2w: Tensor
    focal: float
    names: list[str]
    test_objects: list[int]

    @property
    def views_per_object(self) -> int:
        """Views of each object."""
        return self.images.shape[1]


@dataclass
class PixelScene(SceneData):
    """A SceneData that also holds every object's views for conditioning."""

    bank: ObjectBank | None = None


def one_object_bank(views: Views) -> ObjectBank:
    """A scene's train views as the bank of a single object (nothing held out)."""
    return ObjectBank(views.images[None], views.c2w[None], views.focal, ["scene"], [])


def one_object_scene(scene: SceneData) -> PixelScene:
    """An ordinary scene as one object: rays of every split are conditioned on it."""
    bank = one_object_bank(scene.split("train"))
    splits = {}
    for name, views in scene.splits.items():
        extras = dict(views.extras, object=torch.zeros(len(views), dtype=torch.long))
        if name == "train":
            extras["view"] = torch.arange(len(views))
        splits[name] = Views(views.images, views.c2w, views.focal, views.times, views.names,
                             extras)  # fmt: skip
    return PixelScene(splits, scene.near, scene.far, scene.bounds, scene.name, bank=bank)


def object_names(root: Path) -> dict[str, list[str]]:
    """The ``train`` and ``test`` object folders listed in ``objects.json``."""
    path = root / INDEX
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    index = read_json(path)
    names = {}
    for split in ("train", "test"):
        value = index.get(split)
        if not isinstance(value, list) or not value or not all(isinstance(n, str) for n in value):
            raise DataError(f"{path}: '{split}' must be a non-empty list of object folder names")
        names[split] = value
    return names


def load_object(root: Path, name: str, downscale: int) -> Views:
    """All views of one object (its blender ``train`` split)."""
    folder = root / name
    if not (folder / "transforms_train.json").is_file():
        raise DataError(f"{folder / 'transforms_train.json'}: file is missing")
    views = load_split(folder, "train", downscale)
    assert views is not None
    return views


def stack_objects(root: Path, names: list[str], downscale: int) -> ObjectBank:
    """Load every object; all must have the same view count, image size and focal."""
    loaded = [load_object(root, name, downscale) for name in names]
    first = loaded[0]
    for name, views in zip(names, loaded, strict=True):
        where = root / name / "transforms_train.json"
        if len(views) != len(first):
            raise DataError(f"{where}: {len(views)} views, but {names[0]} has {len(first)}")
        if views.images.shape[1:] != first.images.shape[1:]:
            raise DataError(f"{where}: image size differs from that of {names[0]}")
        if abs(views.focal - first.focal) > 1e-6 * first.focal:
            raise DataError(f"{where}: camera_angle_x differs from that of {names[0]}")
    images = torch.stack([v.images for v in loaded])
    c2w = torch.stack([v.c2w for v in loaded])
    return ObjectBank(images, c2w, first.focal, list(names), [])


def split_views(bank: ObjectBank, objects: list[int], first_view: int) -> Views:
    """Views ``first_view..`` of ``objects`` as one split with ``object``/``view`` extras."""
    count = bank.views_per_object
    obj = torch.tensor(objects).repeat_interleave(count - first_view)
    view = torch.arange(first_view, count).repeat(len(objects))
    names = [f"{bank.names[o]}_r_{v}" for o, v in zip(obj.tolist(), view.tolist(), strict=True)]
    extras = {"object": obj, "view": view}
    return Views(bank.images[obj, view], bank.c2w[obj, view], bank.focal, None, names, extras)


def load_pixel_single(
    path: str | Path,
    downscale: int = 1,
    near: float = 2.0,
    far: float = 6.0,
    bound: float = 1.5,
) -> PixelScene:
    """Load a multi-object folder (see ``synth.py`` for the layout)."""
    root = Path(path)
    if downscale < 1:
        raise DataError(f"{root}: downscale must be >= 1, got {downscale}")
    if not 0 < near < far or not bound > 0:
        raise DataError(f"{root}: need 0 < near < far and bound > 0")
    if not (root / INDEX).exists() and (root / "transforms_train.json").exists():
        return one_object_scene(load_blender(root, downscale, near, far, bound))
    names = object_names(root)
    clash = set(names["train"]) & set(names["test"])
    if clash:
        raise DataError(f"{root / INDEX}: objects in both train and test: {sorted(clash)}")
    bank = stack_objects(root, names["train"] + names["test"], downscale)
    train = list(range(len(names["train"])))
    bank.test_objects = list(range(len(train), len(bank.names)))
    splits = {
        "train": split_views(bank, train, 0),
        "test": split_views(bank, bank.test_objects, 1),
    }
    b = float(bound)
    bounds = (-b, -b, -b, b, b, b)
    return PixelScene(splits, near=near, far=far, bounds=bounds, name=root.name, bank=bank)
