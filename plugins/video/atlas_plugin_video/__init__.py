"""Video data for NeRF Atlas: the ``video`` data kind (``--data clip.mp4 --data-kind video``).

One video from one static camera; every frame is a view with a time from its index,
so ``--plugins dnerf,video`` trains a dynamic scene on it.
"""

from __future__ import annotations

from atlas_core.api import Register, hookimpl
from atlas_plugin_video.data import load_video
from atlas_plugin_video.synth import generate

__all__ = ["load_video"]
__version__ = "1.0.0"


@hookimpl
def atlas_register_datasets(register: Register) -> None:
    """One video file from a static camera, times from the frame index."""
    register("video", load_video, description="one video file, static camera, time per frame",
             synth=generate)  # fmt: skip
