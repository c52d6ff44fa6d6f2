"""The live viewer (``atlas run --viewer``, ``atlas view RUN``), built on viser.

``cameras`` converts poses between viser and NeRF Atlas, ``resolution`` sizes frames from
the measured render speed, ``frames`` renders one frame of an output, ``keyframes`` saves
recorded cameras as a camera_path.json, ``handle`` is what plugins get
(``atlas_viewer_setup``), and ``server`` runs the viser server and its render thread.
viser itself is imported only when a server starts (the ``viewer`` extra).
"""

from atlas_core.viewer.handle import OutputFn, ViewerHandle

__all__ = ["OutputFn", "ViewerHandle"]
