"""pixelNeRF for NeRF Atlas: a NeRF conditioned on one or a few source views.

``--plugins pixelnerf`` chooses the ``pixelnerf`` field (unless the user chose a field):
Yu et al. 2021, an MLP fed with CNN features of the source images at each sample's
projection. ``--data-kind pixel-single`` loads many objects, each with its own posed
views (write them with ``atlas-pixel-synth``); training draws a few objects per step,
their source views and rays from their other views; the test split holds the held-out
objects, each seen from its view 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from atlas_core import hookimpl
from atlas_core.hookspecs import Register
from atlas_core.pipeline import plugin_options
from atlas_plugin_pixelnerf.batches import ObjectBatches
from atlas_plugin_pixelnerf.data import PixelScene, load_pixel_single
from atlas_plugin_pixelnerf.field import NAME, PixelNeRFField
from atlas_plugin_pixelnerf.options import PixelNeRFOptions
from atlas_plugin_pixelnerf.synth import generate

if TYPE_CHECKING:
    from atlas_core.config import RunConfig
    from atlas_core.train import Trainer

__all__ = ["ObjectBatches", "PixelNeRFField", "PixelNeRFOptions", "load_pixel_single"]
__version__ = "0.1.0"

DATA_KIND = "pixel-single"
BATCHES: WeakKeyDictionary[Trainer, ObjectBatches] = WeakKeyDictionary()


def options(config: RunConfig) -> PixelNeRFOptions:
    """The run's checked ``pixelnerf.*`` options."""
    return plugin_options(config, NAME, PixelNeRFOptions)


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The image-conditioned field."""
    register(NAME, PixelNeRFField, description="pixelNeRF: MLP on source-view CNN features")


@hookimpl
def atlas_register_datasets(register: Register) -> None:
    """Many objects with their own views."""
    register(
        DATA_KIND,
        load_pixel_single,
        description="objects.json + one blender folder per object",
        synth=generate,
    )


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check the options; claim the field unless the user chose one."""
    options(config)
    if "field" not in config.explicit:
        config.field.name = NAME  # claimed even if filled: the core reports two claims


@hookimpl
def atlas_train_start(trainer: Trainer) -> None:
    """Install per-step object batches (pixel-single data and the pixelnerf field only)."""
    scene = trainer.scene
    conditioned = any(isinstance(m, PixelNeRFField) for m in trainer.pipeline.field.modules())
    if conditioned and isinstance(scene, PixelScene) and scene.bank is not None:
        chosen = options(trainer.config)
        batches = ObjectBatches(
            scene.bank, chosen.source_views, chosen.objects_per_batch, trainer.device
        )
        BATCHES[trainer] = batches
        trainer.train_views = batches.next()


@hookimpl
def atlas_train_step_end(trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
    """Draw the next step's objects and source views."""
    batches = BATCHES.get(trainer)
    if batches is not None:
        trainer.train_views = batches.next()
