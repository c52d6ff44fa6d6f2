"""What a plugin's ``atlas_viewer_setup`` hook gets: a small handle on the live viewer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from atlas_core.nerf.rays import RayBundle

__all__ = ["OutputFn", "ViewerHandle"]

OutputFn = Callable[["RayBundle", dict[str, "Tensor"]], "Tensor"]
"""``fn(rays, outputs) -> Tensor [N, 3]`` (colours in [0, 1]) or ``[N, 1]`` (a scalar map).

``outputs`` holds the pipeline's rendered values for those rays (``rgb``, ``depth``,
``acc``, ``normals`` where the field has them); the rays carry ``times`` from the
viewer's time slider."""


class ViewerHandle:
    """The live viewer as a plugin sees it: add outputs to the dropdown, and controls.

    ``add_output(name, fn)`` adds an entry to the output dropdown; ``gui`` is viser's GUI
    API (``add_slider``, ``add_checkbox``, ... ; None where no browser is served) for a
    plugin's own controls, whose callbacks call ``rerender()`` to show their effect.
    """

    def __init__(
        self,
        outputs: dict[str, OutputFn],
        gui: Any = None,
        rerender: Callable[[], None] | None = None,
    ):
        self._outputs = outputs
        self._gui = gui
        self._rerender = rerender

    @property
    def gui(self) -> Any:
        """viser's ``GuiApi`` of the viewer (None when no server runs, e.g. in tests)."""
        return self._gui

    @property
    def outputs(self) -> list[str]:
        """The names in the output dropdown, in order."""
        return list(self._outputs)

    def add_output(self, name: str, fn: OutputFn) -> None:
        """Add output ``name``: ``fn(rays, outputs)`` gives its per-ray values (see OutputFn)."""
        if not name or name in self._outputs:
            raise ValueError(f"viewer output '{name}' is empty or already exists")
        if not callable(fn):
            raise ValueError(f"viewer output '{name}': {fn!r} is not callable")
        self._outputs[name] = fn

    def rerender(self) -> None:
        """Render every connected browser's view again (after a control changed)."""
        if self._rerender is not None:
            self._rerender()
