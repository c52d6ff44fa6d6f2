"""The live viewer: camera conversion, frames of each output, keyframes, the server and
its command-line options (no browser needed)."""

from __future__ import annotations

import math
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from atlas_core import cli, hookimpl
from atlas_core.commands.camera_paths import read_camera_path
from atlas_core.engine.trainer import load_trained
from atlas_core.nerf.cameras import look_at
from atlas_core.plugins import load
from atlas_core.viewer.cameras import (
    c2w_to_viser,
    quaternion_to_rotation,
    vertical_fov,
    viser_to_c2w,
)
from atlas_core.viewer.frames import FrameRenderer
from atlas_core.viewer.resolution import Resolution

pytest.importorskip("viser")

from conftest import QUICK  # noqa: E402

from atlas_core.viewer import server  # noqa: E402 - after the skip


def free_port() -> int:
    """A port nothing listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    """GET ``url`` without any proxy: status and body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=20) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def run_dir(atlas_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run (30 steps on the 24x24 scene)."""
    out = tmp_path_factory.mktemp("viewer") / "run"
    assert cli.main(["run", "--data", str(atlas_scene), "--out", str(out), *QUICK]) == 0
    return out


class Probe:
    """An in-process plugin adding a viewer output that shows the rays' times."""

    name = "probe"

    @hookimpl
    def atlas_viewer_setup(self, viewer: Any, run: Any) -> None:
        viewer.add_output("ray time", lambda rays, outputs: rays.times)


def with_probe(trainer: Any) -> Any:
    """``trainer`` with the Probe plugin enabled (besides the core)."""
    trainer.plugins = load([], extra=[("probe", Probe())])
    return trainer


# -- cameras --------------------------------------------------------------------------


def test_camera_conversion_round_trip() -> None:
    """Our c2w -> viser (wxyz, position) -> our c2w is the identity; viser looks down our -Z."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        eye = torch.randn(3, generator=generator) * 3
        up = torch.randn(3, generator=generator)
        c2w = look_at(eye, torch.zeros(3), up / up.norm())
        wxyz, position = c2w_to_viser(c2w)
        assert abs(np.linalg.norm(wxyz) - 1) < 1e-9 and wxyz[0] >= 0
        assert torch.allclose(viser_to_c2w(wxyz, position), c2w, atol=1e-5)
        rotation = quaternion_to_rotation(wxyz)  # OpenCV camera axes in the world
        assert np.allclose(rotation[:, 2], -c2w[:3, 2].numpy(), atol=1e-5)  # +Z forward
        assert np.allclose(rotation[:, 1], -c2w[:3, 1].numpy(), atol=1e-5)  # +Y down


def test_our_quaternions_are_visers() -> None:
    """Our quaternion convention is viser's (its own SO3 gives the same rotation)."""
    import viser.transforms as tf

    wxyz = np.array([0.3, -0.5, 0.7, 0.4])
    wxyz /= np.linalg.norm(wxyz)
    assert np.allclose(quaternion_to_rotation(wxyz), tf.SO3(wxyz).as_matrix())


def test_resolution_follows_the_measured_speed() -> None:
    """Previews shrink as rendering gets slower; full frames keep the aspect, capped."""
    res = Resolution(max_side=400, preview_seconds=0.1)
    assert res.full(1000, 500) == (400, 200)
    res.measured(rays=10_000, seconds=0.1)  # 1e-5 s a ray: 10,000 rays in 0.1 s
    width, height = res.preview(1000, 500)
    assert abs(width * height - 10_000) < 500 and abs(width / height - 2) < 0.05
    res.seconds_per_ray = 1e-3
    assert res.preview(1000, 500)[1] == 16  # never below min_side


# -- frames ---------------------------------------------------------------------------


def test_each_output_renders_at_the_chosen_size(run_dir: Path) -> None:
    """colour, depth and accumulation come back as uint8 images of the asked size."""
    trainer = load_trained(run_dir)
    frames = FrameRenderer(trainer)
    assert list(frames.outputs) == ["colour", "depth", "accumulation"]
    views = trainer.scene.split("test")
    fov = vertical_fov(views.focal, views.height)
    images = {}
    for output in frames.outputs:
        image = frames.render(views.c2w[0], fov, 20, 12, output)
        assert image.shape == (12, 20, 3) and image.dtype == np.uint8
        images[output] = image
    assert not np.array_equal(images["colour"], images["depth"])
    assert not np.array_equal(images["depth"], images["accumulation"])
    assert frames.resolution.seconds_per_ray is not None  # measured


def test_render_respects_the_time_value(run_dir: Path) -> None:
    """The time slider's value reaches the rays (a plugin output shows ``rays.times``)."""
    trainer = with_probe(load_trained(run_dir))
    frames = FrameRenderer(trainer)
    server.plugin_setup(trainer, frames)
    assert "ray time" in frames.outputs
    views = trainer.scene.split("test")
    fov = vertical_fov(views.focal, views.height)
    for value in (0.25, 0.75):
        image = frames.render(views.c2w[0], fov, 8, 6, "ray time", time_value=value)
        assert image.shape == (6, 8, 3) and np.all(image == round(value * 255))


def test_keyframes_save_a_camera_path(run_dir: Path) -> None:
    """Recorded keyframes become a camera_path.json that read_camera_path reads."""
    trainer = load_trained(run_dir)
    viewer = server.Viewer(trainer, port=free_port())
    try:
        assert viewer.save_camera_path() is None  # nothing recorded yet
        views = trainer.scene.split("train")
        fov = math.radians(40)
        viewer.record_keyframe(views.c2w[0], fov)
        viewer.record_keyframe(views.c2w[3], fov)
        path = viewer.save_camera_path()
    finally:
        viewer.stop()
    assert path == run_dir / "camera_path.json"
    camera = read_camera_path(path)
    fps = trainer.config.eval.fps
    assert len(camera.poses) == 1 + round(2.0 * fps)  # two seconds from one to the next
    assert torch.allclose(camera.poses[0], views.c2w[0], atol=1e-5)
    assert torch.allclose(camera.poses[-1], views.c2w[3], atol=1e-5)
    assert (camera.width, camera.height) == (views.width, views.height)
    assert abs(camera.focals[0] - 0.5 * views.height / math.tan(fov / 2)) < 1e-6
    assert cli.main(["render", str(run_dir), "--path", str(path)]) == 0
    assert (run_dir / "camera_path.mp4").is_file()


# -- the server -----------------------------------------------------------------------


class FakeClient:
    """Enough of viser's ClientHandle for the render thread: a camera and a background."""

    def __init__(self, c2w: torch.Tensor, fov: float):
        wxyz, position = c2w_to_viser(c2w)
        self.client_id = 99
        self.camera = SimpleNamespace(
            wxyz=wxyz, position=position, fov=fov, image_width=64, image_height=48
        )
        self.images: list[np.ndarray] = []
        self.scene = SimpleNamespace(
            set_background_image=lambda image, **_: self.images.append(image)
        )


def test_viewer_serves_the_client_and_renders_for_a_camera(run_dir: Path) -> None:
    """On 127.0.0.1:PORT it serves viser's page, shows the training cameras and the plugin's
    output; a camera move gets a preview, then a full-resolution frame."""
    trainer = with_probe(load_trained(run_dir))
    port = free_port()
    viewer = server.Viewer(trainer, port=port)
    try:
        assert (viewer.host, viewer.port) == ("127.0.0.1", port)
        status, body = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<title>Viser</title>" in body
        assert len(viewer.frustums) == len(trainer.scene.split("train"))
        assert "ray time" in viewer.output.options
        views = trainer.scene.split("test")
        client = FakeClient(views.c2w[0], vertical_fov(views.focal, views.height))
        state = server._Client(client, moved_at=time.monotonic(), seen_camera=True)
        state.preview_due = True
        with viewer._state:
            viewer._clients[client.client_id] = state
        viewer._wake.set()
        deadline = time.monotonic() + 30
        while not state.full_done and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.full_done and len(client.images) >= 2
        full = viewer.frames.resolution.full(64, 48)
        assert client.images[-1].shape == (full[1], full[0], 3)
    finally:
        viewer.stop()


def test_no_rendering_without_a_browser(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nobody connected the render thread sleeps: no frame is rendered."""
    calls = []
    monkeypatch.setattr(FrameRenderer, "render", lambda *a, **k: calls.append(a))
    viewer = server.Viewer(load_trained(run_dir), port=free_port(), training=True)
    try:
        time.sleep(1.5)
        assert viewer._thread.is_alive() and calls == []
    finally:
        viewer.stop()
    assert not viewer._thread.is_alive()


class CountingLock:
    """A lock that counts how often it was taken."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> None:
        self.lock.acquire()
        self.taken += 1

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_run_with_viewer_serves_on_the_port_and_locks_each_step(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``atlas run --viewer --viewer-port P`` serves on P while training holds its lock."""
    port, seen = free_port(), {}
    start = cli._start_viewer

    def spy(trainer: Any, asked: int, training: bool) -> Any:
        viewer = start(trainer, asked, training)
        seen.update(port=viewer.port, training=training, page=fetch(viewer.url)[0])
        viewer.lock = seen["lock"] = CountingLock()
        seen["viewer"] = viewer
        return viewer

    monkeypatch.setattr(cli, "_start_viewer", spy)
    out = tmp_path / "run"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), *QUICK]
    assert cli.main([*args, "--viewer", "--viewer-port", str(port)]) == 0
    assert seen["port"] == port and seen["training"] and seen["page"] == 200
    assert seen["lock"].taken == 30 + 1  # every step, then the final evaluation
    assert not seen["viewer"]._thread.is_alive()  # stopped at the end


def test_run_without_viewer_starts_none(
    atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --viewer, no viewer."""
    monkeypatch.setattr(cli, "_start_viewer", lambda *a: pytest.fail("viewer started"))
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), *QUICK]
    assert cli.main([*args, "--max-steps", "2"]) == 0


def test_view_command_serves_on_its_port(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas view RUN --port P`` serves the run on P until interrupted, then stops."""
    port, seen = free_port(), {}

    def serve(viewer: Any) -> None:
        seen.update(port=viewer.port, page=fetch(viewer.url)[0], training=viewer.training)
        seen["viewer"] = viewer
        raise KeyboardInterrupt  # as Ctrl-C would

    monkeypatch.setattr(server.Viewer, "serve_forever", serve)
    assert cli.main(["view", str(run_dir), "--port", str(port)]) == 0
    assert seen["port"] == port and seen["page"] == 200 and not seen["training"]
    assert not seen["viewer"]._thread.is_alive()


def test_without_viser_one_line_and_exit_2(
    run_dir: Path, atlas_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Without viser, --viewer and atlas view fail at once naming the extra to install."""
    monkeypatch.setitem(sys.modules, "viser", None)  # import viser raises ImportError
    assert cli.main(["view", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'nerf-atlas[viewer]'" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "never"
    assert cli.main(["run", "--data", str(atlas_scene), "--out", str(out), "--viewer"]) == 2
    assert "nerf-atlas[viewer]" in capsys.readouterr().err and not out.exists()


def test_start_camera_sees_the_scene_past_no_frustum() -> None:
    """The browser's first camera sits inside the ring of training cameras, facing the
    centre, so no training camera lies between it and the scene."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    eyes = np.stack([4 * np.cos(angles), 4 * np.sin(angles), np.full_like(angles, 1.0)], -1)
    centre = np.zeros(3)
    eye = server.start_position(eyes, centre)
    assert np.linalg.norm(eye - centre) < np.linalg.norm(eyes - centre, axis=1).min()
    sight = (centre - eye) / np.linalg.norm(centre - eye)
    along = (eyes - eye) @ sight
    across = np.linalg.norm(eyes - eye - along[:, None] * sight, axis=1)
    between = (along > 0) & (along < np.linalg.norm(centre - eye)) & (across < 0.5)
    assert not between.any()
