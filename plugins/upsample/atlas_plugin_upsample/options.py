"""The plugin's own options: ``--set upsample.KEY=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpsampleOptions:
    """``scale``: pixels per rendered ray along each axis; ``features``: channels rendered
    besides rgb; ``width``: CNN channels; ``blocks``: 3x3 conv layers before upsampling."""

    scale: int = 2
    features: int = 8
    width: int = 32
    blocks: int = 2

    def __post_init__(self) -> None:
        if self.scale < 1 or self.features < 0 or self.width < 1 or self.blocks < 0:
            raise ValueError("need scale >= 1, features >= 0, width >= 1, blocks >= 0")
