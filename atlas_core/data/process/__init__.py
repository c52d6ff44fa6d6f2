"""``atlas data process``: structure from motion (pycolmap) from photos or a video.

``frames`` (photos, video frames and their sharpness), ``sfm`` (pycolmap), ``writer``
(transforms.json, images_N, sparse_pc.ply) and ``pipeline`` (the phases, written
atomically).
"""

from atlas_core.data.process.pipeline import DEFAULT_FRAMES, Summary, process
from atlas_core.data.process.sfm import CAMERA_MODELS, MATCHERS

__all__ = ["CAMERA_MODELS", "DEFAULT_FRAMES", "MATCHERS", "Summary", "process"]
