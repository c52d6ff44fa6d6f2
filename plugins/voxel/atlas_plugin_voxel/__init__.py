"""NeRF Atlas plugin ``voxel``: a DVGO-style dense voxel radiance field (Sun et al. 2022)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_core import hookimpl
from atlas_core.hookspecs import Register
from atlas_plugin_voxel.field import VoxelField
from atlas_plugin_voxel.losses import ColorTVLoss, DensityTVLoss

if TYPE_CHECKING:
    from torch import nn

    from atlas_core.config import RunConfig
    from atlas_core.train import Trainer

__version__ = "0.1.0"

DEFAULT_FIELD = "tiny"  # the core's default field slot, which this plugin fills
TV_WEIGHTS = {"tv_density": 1e-4, "tv_color": 1e-4}  # defaults unless the user set them


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The voxel field."""
    register("voxel", VoxelField, description="DVGO dense density + feature grids, tiny MLP")


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """Total variation of the density and colour grids."""
    register("tv_density", DensityTVLoss, description="total variation of the density grid")
    register("tv_color", ColorTVLoss, description="total variation of the colour grid")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Choose the voxel field unless the user chose a field; add TV terms to it."""
    if config.field.name == DEFAULT_FIELD and "field" not in config.explicit:
        config.field.name = "voxel"
    if config.field.name == "voxel":
        for name, weight in TV_WEIGHTS.items():
            config.losses.setdefault(name, weight)


def upscale_fields(model: nn.Module, step: int) -> bool:
    """Bring every VoxelField in ``model`` to its scheduled resolution; True if any grew."""
    changed = False
    for module in model.modules():
        if isinstance(module, VoxelField):
            changed |= module.upscale(module.resolution_at(step))
    return changed


@hookimpl
def atlas_train_step_end(trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
    """Progressive scaling (DVGO sec. 5.2): upscale on schedule, then a fresh optimizer."""
    if upscale_fields(trainer.pipeline, step):
        trainer.rebuild_optimizer()
