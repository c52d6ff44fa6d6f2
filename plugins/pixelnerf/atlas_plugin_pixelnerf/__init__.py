"""pixelNeRF for NeRF Atlas: a NeRF conditioned on one or a few source views.

``--plugins pixelnerf`` chooses the ``pixelnerf`` field (unless the user chose a field):
Yu et al. 2021, an MLP fed with CNN features of the source images at each sample's
projection. ``--data-kind pixel-single`` loads many objects, each with its own posed
views (write them with ``atlas-pixel-synth``); training draws a few objects per step,
their source views and rays from their other views; the test split holds the held-out
objects, each seen from its view 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlas_core.api import Register, Run, Views, first_with, hookimpl, plugin_options
from atlas_plugin_pixelnerf.batches import ObjectBatches
from atlas_plugin_pixelnerf.data import PixelScene, load_pixel_single
from atlas_plugin_pixelnerf.field import NAME, PixelNeRFField
from atlas_plugin_pixelnerf.options import PixelNeRFOptions
from atlas_plugin_pixelnerf.synth import generate

if TYPE_CHECKING:
    from atlas_core.api import RunConfig

__all__ = ["ObjectBatches", "PixelNeRFField", "PixelNeRFOptions", "load_pixel_single"]
__version__ = "1.0.0"

DATA_KIND = "pixel-single"


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
def atlas_train_start(run: Run) -> None:
    """Set up per-step object batches (pixel-single data and the pixelnerf field only)."""
    scene = run.scene
    conditioned = first_with(run.pipeline.field, PixelNeRFField) is not None
    if conditioned and isinstance(scene, PixelScene) and scene.bank is not None:
        chosen = options(run.config)
        run.store[NAME] = ObjectBatches(
            scene.bank, chosen.source_views, chosen.objects_per_batch, run.device
        )


@hookimpl
def atlas_train_views(run: Run, step: int) -> Views | None:
    """Each step's objects and source views (None without object batches)."""
    batches = run.store.get(NAME)
    return None if batches is None else batches.next()
