"""The live viewer: a viser server showing a run from wherever the browser's camera is.

One background thread renders; viser's own threads only record camera moves and wake it.
With no browser connected the thread sleeps on an event and renders nothing. A moving
camera gets previews sized to render in about 0.15 s; once it has been still for
``SETTLE_SECONDS`` a full-resolution frame follows, chunk by chunk, abandoned if the camera
moves again. While training, each chunk holds the lock the trainer holds around a step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atlas_core.errors import AtlasError, first_line
from atlas_core.viewer.cameras import c2w_to_viser, vertical_fov, viser_to_c2w
from atlas_core.viewer.frames import FrameRenderer
from atlas_core.viewer.handle import ViewerHandle
from atlas_core.viewer.keyframes import Keyframes

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "SETTLE_SECONDS",
    "VIEWER_HINT",
    "Viewer",
    "plugin_setup",
    "require_viser",
    "start_position",
    "thumbnails",
]

VIEWER_HINT = "pip install 'nerf-atlas[viewer]'"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7007
SETTLE_SECONDS = 0.25  # a camera still this long gets a full-resolution frame
MAX_FRUSTUMS = 300
THUMBNAIL_SIDE = 64
FRUSTUM_SCALE = 0.04  # frustum depth, as a fraction of the cameras' mean distance
START_DEPTH = 0.85  # the start camera's distance, as a fraction of the nearest camera's


def require_viser() -> Any:
    """The viser module, or an AtlasError naming the extra that installs it."""
    try:
        import viser
    except ImportError as exc:
        raise AtlasError(f"the viewer needs viser, which is not installed: {VIEWER_HINT}") from exc
    return viser


def thumbnails(images: torch.Tensor, side: int = THUMBNAIL_SIDE) -> list[np.ndarray]:
    """uint8 RGBA images [N, H, W, 4] as RGB thumbnails over white, longer side <= ``side``."""
    height, width = images.shape[1:3]
    step = max(1, -(-max(height, width) // side))
    out = []
    for image in images:
        small = image[::step, ::step].float() / 255.0
        rgb = small[..., :3] * small[..., 3:] + (1 - small[..., 3:])
        out.append((rgb * 255).round().to(torch.uint8).numpy())
    return out


def start_position(eyes: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Where the browser's camera starts: just inside the training cameras, between the
    first two neighbours, so no frustum stands between it and the scene."""
    offsets = eyes - centre
    first = offsets[0]
    if len(offsets) > 1:
        nearest = 1 + int(np.argmin(np.linalg.norm(offsets[1:] - first, axis=1)))
        first = first + offsets[nearest]
    direction = first / max(np.linalg.norm(first), 1e-9)
    return centre + START_DEPTH * float(np.linalg.norm(offsets, axis=1).min()) * direction


def plugin_setup(
    trainer: Any, frames: FrameRenderer, gui: Any = None, rerender: Any = None
) -> None:
    """Call ``atlas_viewer_setup`` of the run's plugins: they add outputs and controls."""
    handle = ViewerHandle(frames.outputs, gui, rerender)
    trainer.plugins.call("atlas_viewer_setup", viewer=handle, run=trainer.run)


@dataclass
class _Client:
    """A connected browser and what its view needs next."""

    client: Any
    generation: int = 0  # camera updates seen
    moved_at: float = 0.0
    seen_camera: bool = False
    preview_due: bool = False
    full_done: bool = False
    last_full: float = 0.0


class Viewer:
    """A viser server for ``trainer``'s run on ``host:port`` (the port actually bound is
    ``port`` after start: viser takes the next free one when it is busy).

    ``training=True`` makes ``lock``, which the trainer holds around each step, and
    re-renders every browser's view now and then so the model is seen improving.
    """

    def __init__(
        self,
        trainer: Any,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        training: bool = False,
    ):
        viser = require_viser()
        self.trainer = trainer
        self.training = training
        self.lock: threading.Lock | None = threading.Lock() if training else None
        self.frames = FrameRenderer(trainer, self.lock)
        views = trainer.scene.split("train")
        self.keyframes = Keyframes(views.width, views.height, trainer.config.eval.fps)
        self.camera_path_file = Path(trainer.out) / "camera_path.json"
        self._clients: dict[int, _Client] = {}
        self._state = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._full_seconds = 0.0
        self.server = viser.ViserServer(host=host, port=port, label="NeRF Atlas", verbose=False)
        self.host, self.port = host, self.server.get_port()
        try:
            self._build_scene(views)
            self._build_gui()
            plugin_setup(trainer, self.frames, self.server.gui, self.rerender)
            self.output.options = tuple(self.frames.outputs)
        except BaseException:
            self.server.stop()
            raise
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)
        self._thread = threading.Thread(target=self._loop, name="atlas-viewer", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where a browser opens the viewer."""
        return f"http://{self.host}:{self.port}"

    # -- the scene and the panel --------------------------------------------------------

    def _build_scene(self, views: Any) -> None:
        """Training cameras as frustums with thumbnails; the initial camera; up direction."""
        scene = self.server.scene
        up = views.c2w[:, :3, 1].double().mean(0)
        up = up / up.norm().clamp_min(1e-9)
        scene.set_up_direction(tuple(float(v) for v in up))
        eyes = views.c2w[:, :3, 3].double()
        radius = float(eyes.norm(dim=-1).mean())
        picks = np.unique(np.linspace(0, len(views) - 1, min(len(views), MAX_FRUSTUMS)).round())
        fov = vertical_fov(views.focal, views.height)
        aspect = views.width / views.height
        images = thumbnails(views.images[torch.as_tensor(picks, dtype=torch.long)])
        self.frustums = []
        for index, image in zip(picks.astype(int).tolist(), images, strict=True):
            wxyz, position = c2w_to_viser(views.c2w[index])
            frustum = scene.add_camera_frustum(
                f"/cameras/{index}",
                fov=fov,
                aspect=aspect,
                scale=FRUSTUM_SCALE * radius,
                thickness=FRUSTUM_SCALE * radius / 40,
                image=image,
                format="jpeg",
                wxyz=wxyz,
                position=position,
            )
            self.frustums.append(frustum)
        bounds = self.trainer.scene.bounds
        centre = np.array([(bounds[i] + bounds[i + 3]) / 2 for i in range(3)])
        start = start_position(eyes.numpy(), centre)
        if getattr(self.trainer.scene, "space", "box") == "ndc":  # the box is in NDC: look
            forward = -views.c2w[:, :3, 2].double().mean(0)  # the way the cameras look
            start = eyes.mean(0).numpy()
            centre = start + (forward / forward.norm().clamp_min(1e-9)).numpy()
        self.server.initial_camera.position = tuple(start.tolist())
        self.server.initial_camera.look_at = tuple(centre.tolist())
        self.server.initial_camera.up = tuple(float(v) for v in up)
        self.server.initial_camera.fov = fov

    def _build_gui(self) -> None:
        """Output dropdown, time slider (dynamic scenes), keyframe buttons, status line."""
        gui = self.server.gui
        self.status = gui.add_markdown("starting")
        self.output = gui.add_dropdown("Output", tuple(self.frames.outputs), initial_value="colour")
        self.output.on_update(lambda _: self.rerender())
        self.time_slider = None
        if self.frames.dynamic:
            self.time_slider = gui.add_slider(
                "Time", min=0.0, max=1.0, step=0.01, initial_value=0.0
            )
            self.time_slider.on_update(lambda _: self.rerender())
        show = gui.add_checkbox("Training cameras", initial_value=True)

        @show.on_update
        def _(_: Any) -> None:
            for frustum in self.frustums:
                frustum.visible = show.value

        record = gui.add_button("Record keyframe")
        save = gui.add_button("Save camera path")
        self.keyframe_note = gui.add_markdown("no keyframes")

        @record.on_click
        def _(event: Any) -> None:
            camera = event.client.camera
            self.record_keyframe(viser_to_c2w(camera.wxyz, camera.position), camera.fov)

        @save.on_click
        def _(_: Any) -> None:
            self.save_camera_path()

    def record_keyframe(self, c2w: torch.Tensor, fov: float) -> int:
        """Add a keyframe (our c2w, vertical fov in radians); returns how many there are."""
        count = self.keyframes.record(c2w, fov)
        self.keyframe_note.content = f"{count} keyframe(s); save to write `{self.camera_path_file}`"
        return count

    def save_camera_path(self) -> Path | None:
        """Write the keyframes to RUN/camera_path.json (None when there are none)."""
        if not len(self.keyframes):
            self.keyframe_note.content = "record a keyframe first"
            return None
        path = self.keyframes.save(self.camera_path_file)
        self.keyframe_note.content = (
            f"wrote `{path}` ({len(self.keyframes)} keyframes): "
            f"`atlas render {self.trainer.out} --path {path}`"
        )
        return path

    # -- clients ------------------------------------------------------------------------

    def _connect(self, client: Any) -> None:
        state = _Client(client)
        with self._state:
            self._clients[client.client_id] = state

        @client.camera.on_update
        def _(_: Any) -> None:
            with self._state:
                state.generation += 1
                state.moved_at = time.monotonic()
                state.seen_camera = state.preview_due = True
                state.full_done = False
            self._wake.set()

    def _disconnect(self, client: Any) -> None:
        with self._state:
            self._clients.pop(client.client_id, None)

    def rerender(self) -> None:
        """Render every connected browser's view again (a preview, then full resolution)."""
        with self._state:
            for state in self._clients.values():
                state.preview_due, state.full_done = True, False
        self._wake.set()

    # -- the render thread --------------------------------------------------------------

    def _refresh_seconds(self) -> float:
        """While training: how often a still view is rendered again (at most ~25% busy)."""
        return max(1.0, 4 * self._full_seconds)

    def _next(self) -> tuple[_Client | None, bool, float | None]:
        """The next job (client, full resolution?) or, with none, how long to sleep."""
        now = time.monotonic()
        with self._state:
            ready = [s for s in self._clients.values() if s.seen_camera]
        wait: float | None = None
        for state in ready:
            if state.preview_due:
                return state, False, None
        for state in ready:
            if not state.full_done:
                left = SETTLE_SECONDS - (now - state.moved_at)
                if left <= 0:
                    return state, True, None
                wait = left if wait is None else min(wait, left)
        if self.training:
            for state in ready:
                left = self._refresh_seconds() - (now - state.last_full)
                if left <= 0:
                    return state, True, None
                wait = left if wait is None else min(wait, left)
        return None, False, wait

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            state, full, wait = self._next()
            if state is None:
                self._wake.wait(wait)  # None: no browser, or nothing to do: sleep until woken
                continue
            try:
                self._render(state, full)
            except Exception as exc:  # noqa: BLE001 - shown in the panel; the viewer goes on
                self.status.content = f"render failed: {first_line(exc)}"
                with self._state:
                    state.preview_due, state.full_done = False, True
                    state.last_full = time.monotonic() + 5.0  # do not retry at once

    def _render(self, state: _Client, full: bool) -> None:
        """Render one frame for one browser and send it as the scene's background."""
        with self._state:
            generation = state.generation
            state.preview_due = False
        camera = state.client.camera
        c2w = viser_to_c2w(camera.wxyz, camera.position)
        size = (camera.image_width, camera.image_height)
        resolution = self.frames.resolution
        width, height = resolution.full(*size) if full else resolution.preview(*size)

        def cancelled() -> bool:
            return self._stopped.is_set() or (full and state.generation != generation)

        start = time.perf_counter()
        image = self.frames.render(
            c2w, camera.fov, width, height, self.output.value, self.time_value, cancelled
        )
        if image is None:
            return
        seconds = time.perf_counter() - start
        state.client.scene.set_background_image(image, format="jpeg", jpeg_quality=90)
        if full:
            self._full_seconds = seconds
            with self._state:
                state.full_done = state.generation == generation
                state.last_full = time.monotonic()
        step = f"step {self.trainer.step} · " if self.training else ""
        kind = "full" if full else "preview"
        self.status.content = f"{step}{kind} {width}x{height} in {seconds:.2f} s"

    @property
    def time_value(self) -> float:
        """The time slider's value (0 for static scenes)."""
        return float(self.time_slider.value) if self.time_slider is not None else 0.0

    # -- lifetime -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Block until Ctrl-C (``atlas view``)."""
        while not self._stopped.wait(3600):
            pass

    def stop(self) -> None:
        """Stop the render thread and the server."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.server.stop()
