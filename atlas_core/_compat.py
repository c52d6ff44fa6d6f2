"""Import paths of NeRF Atlas 0.1 that moved in 1.0: they keep working for one release.

``import atlas_core.rays`` (and ``from atlas_core.rays import RayBundle``) still works, with
a DeprecationWarning naming the new place: an import hook builds the old module from the
modules its names moved to. Plugins import from ``atlas_core.api`` instead; these aliases
go away in 2.0.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED", "install"]

MOVED: dict[str, tuple[str, ...]] = {
    "atlas_core.cameras": ("atlas_core.nerf.cameras",),
    "atlas_core.checkpoints": ("atlas_core.engine.checkpoints",),
    "atlas_core.clashes": ("atlas_core.build",),
    "atlas_core.colour": ("atlas_core.nerf.colour",),
    "atlas_core.crops": ("atlas_core.nerf.crops",),
    "atlas_core.distributed": ("atlas_core.engine.distributed",),
    "atlas_core.encodings": ("atlas_core.nerf.encodings",),
    "atlas_core.evaluate": ("atlas_core.engine.evaluate",),
    "atlas_core.export": ("atlas_core.commands.export",),
    "atlas_core.faults": ("atlas_core.engine.faults",),
    "atlas_core.fields": ("atlas_core.nerf.fields", "atlas_core.nerf.mlp"),
    "atlas_core.grid": ("atlas_core.nerf.grid",),
    "atlas_core.image_losses": ("atlas_core.nerf.image_losses",),
    "atlas_core.losses": ("atlas_core.nerf.losses",),
    "atlas_core.metrics": ("atlas_core.nerf.metrics",),
    "atlas_core.occupancy": ("atlas_core.nerf.occupancy",),
    "atlas_core.optim": ("atlas_core.engine.optimizers.masked_adam",),
    "atlas_core.optimizers": ("atlas_core.engine.optimizers.choice",),
    "atlas_core.pipeline": ("atlas_core.build", "atlas_core.nerf.pipeline"),
    "atlas_core.rays": ("atlas_core.nerf.rays",),
    "atlas_core.render": ("atlas_core.nerf.compositing", "atlas_core.nerf.renderers"),
    "atlas_core.samplers": ("atlas_core.nerf.samplers",),
    "atlas_core.train": ("atlas_core.engine.trainer",),
    "atlas_core.uniform_adam": ("atlas_core.engine.optimizers.uniform_adam",),
    "atlas_core.video": ("atlas_core.commands.video", "atlas_core.data.images"),
}


class _Alias(types.ModuleType):
    """An old module: its names are looked up in the modules they moved to."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Moved in NeRF Atlas 1.0 to {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attr: str) -> Any:  # noqa: ANN401 - any moved name
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self.__targets:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names and builds their aliases."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:  # noqa: ANN401
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved in NeRF Atlas 1.0 (to {', '.join(targets)}); plugins import "
            "from atlas_core.api, and this old path goes away in 2.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return _Alias(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: names resolve on first use."""


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
