"""The plugin's own options: ``--set mip.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass

from atlas_plugin_mip.gaussians import Shape


@dataclass(frozen=True)
class MipOptions:
    """``shape``: the footprint each interval covers, ``cone`` (the paper's) or ``cylinder``."""

    shape: Shape = "cone"
