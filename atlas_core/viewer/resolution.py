"""Image sizes for the viewer from the measured render speed."""

from __future__ import annotations

import math

__all__ = ["Resolution"]


class Resolution:
    """Previews sized to render in about ``preview_seconds``; full frames up to ``max_side``.

    ``measured(rays, seconds)`` keeps a running estimate of seconds per ray; a preview
    then has about ``preview_seconds / seconds_per_ray`` pixels, in the canvas's aspect.
    """

    def __init__(self, max_side: int, preview_seconds: float = 0.15, min_side: int = 16):
        self.max_side = max(int(max_side), min_side)
        self.preview_seconds = preview_seconds
        self.min_side = min_side
        self.seconds_per_ray: float | None = None

    def measured(self, rays: int, seconds: float) -> None:
        """Fold one render's time into the estimate (an exponential moving average)."""
        if rays <= 0 or seconds <= 0:
            return
        rate = seconds / rays
        old = self.seconds_per_ray
        self.seconds_per_ray = rate if old is None else 0.5 * old + 0.5 * rate

    def full(self, width: int, height: int) -> tuple[int, int]:
        """The canvas size, scaled down so its longer side is at most ``max_side``."""
        width, height = max(int(width), 1), max(int(height), 1)
        scale = min(1.0, self.max_side / max(width, height))
        return max(round(width * scale), 1), max(round(height * scale), 1)

    def preview(self, width: int, height: int) -> tuple[int, int]:
        """A size for a moving camera: about ``preview_seconds`` of rendering, never above full."""
        full_w, full_h = self.full(width, height)
        if self.seconds_per_ray is None:
            rays = 64 * 64  # before the first measurement
        else:
            rays = self.preview_seconds / self.seconds_per_ray
        scale = min(1.0, math.sqrt(rays / (full_w * full_h)))
        shorter = min(full_w, full_h)
        scale = max(scale, min(1.0, self.min_side / shorter))  # not below min_side pixels
        return max(round(full_w * scale), 1), max(round(full_h * scale), 1)
