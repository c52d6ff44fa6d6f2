"""As a person would look: headless Chromium opens the live viewer and the reports.

Skipped (with the reason) where Chromium is not installed; ``make test-browser`` installs
Debian's ``chromium`` and runs these. Screenshots land in the test's temporary folder, or
in ``$ATLAS_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atlas_core import cli

pytest.importorskip("viser")
pytest.importorskip("websockets")

from browser import Browser, chromium  # noqa: E402 - after the skips
from conftest import QUICK  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium() is None, reason="chromium not installed: `make test-browser`"),
]

STUDY = """from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
"""


def free_port() -> int:
    """A port nothing listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go."""
    folder = os.environ.get("ATLAS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    """One Chromium for the module, with a fresh profile."""
    with Browser(tmp_path_factory.mktemp("profile")) as chrome:
        yield chrome


@pytest.fixture(scope="module")
def trained(atlas_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run (30 steps on the 24x24 scene)."""
    out = tmp_path_factory.mktemp("browser") / "run"
    assert cli.main(["run", "--data", str(atlas_scene), "--out", str(out), *QUICK]) == 0
    return out


def busy(png: Path, box: tuple[float, float, float, float]) -> float:
    """Standard deviation of the screenshot's grey levels inside a box (fractions of W, H)."""
    image = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    height, width = image.shape
    left, top, right, bottom = box
    crop = image[int(top * height) : int(bottom * height), int(left * width) : int(right * width)]
    return float(crop.std())


def test_viewer_page_shows_a_full_rendered_frame(
    trained: Path, browser: Browser, shots: Path
) -> None:
    """``atlas view RUN`` in a browser: viser's client connects, sends its camera, and
    receives first a preview and then a full-resolution frame of the run."""
    port = free_port()
    argv = [sys.executable, "-m", "atlas_core", "view", str(trained), "--port", str(port)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None and time.monotonic() < deadline, "viewer never served"
            time.sleep(0.2)
        browser.open(f"http://127.0.0.1:{port}/")
        status = browser.wait_for(
            "(document.body.innerText.match(/full \\d+x\\d+ in [\\d.]+ s/) || [''])[0]", 90
        )
        assert status.startswith("full ")
        assert browser.evaluate("document.querySelectorAll('canvas').length") >= 1
        png = browser.screenshot(shots / "viewer.png")
        # the rendered frame fills the view's background: the middle is not one flat colour
        assert busy(png, (0.3, 0.3, 0.7, 0.7)) > 3.0
        assert any(url.startswith(f"http://127.0.0.1:{port}") for url in browser.requests)
        assert browser.outside_requests() == []  # nothing in the viewer reaches the internet
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_run_report_opens_offline_with_every_part(
    trained: Path, browser: Browser, shots: Path
) -> None:
    """The run's report.html: charts drawn, every image decoded, the video, the tables."""
    browser.open((trained / "report.html").as_uri())
    browser.wait_for("document.readyState === 'complete'")
    text = browser.evaluate("document.body.innerText")
    for part in ("PSNR", "learning rate", "config", "plugins"):
        assert part.lower() in text.lower(), part
    assert browser.evaluate("document.querySelectorAll('svg polyline, svg path').length") >= 2
    images = browser.evaluate(
        "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images and all(images)
    assert browser.evaluate("document.querySelectorAll('video').length") == 1
    png = browser.screenshot(shots / "run-report.png", full_page=True)
    assert busy(png, (0.0, 0.0, 1.0, 1.0)) > 10.0
    assert browser.outside_requests() == []  # opens offline: no CDN, no fonts from the web


def test_sweep_report_opens_offline_with_links(
    atlas_scene: Path, tmp_path: Path, browser: Browser, shots: Path
) -> None:
    """A 2-trial sweep's report.html: trials table, charts, links to each trial's report."""
    study = tmp_path / "tiny.py"
    study.write_text(STUDY)
    out = tmp_path / "sweep"
    argv = ["sweep", str(study), "--data", str(atlas_scene), "--trials", "2", "--out", str(out)]
    argv += ["--logger", "none", "--pruner", "none", "--set", "train.max_steps=12"]
    argv += ["--set", "eval.views=1", "--set", "eval.video_frames=0", "--set", "field.width=8"]
    assert cli.main(argv) == 0
    browser.open((out / "report.html").as_uri())
    browser.wait_for("document.readyState === 'complete'")
    assert browser.evaluate("document.querySelectorAll('svg').length") >= 2
    links = browser.evaluate(
        "Array.from(document.querySelectorAll('a')).map(a => a.href)"
        ".filter(h => h.endsWith('report.html'))"
    )
    assert len(links) == 2
    browser.screenshot(shots / "sweep-report.png", full_page=True)
    browser.open(links[0])
    browser.wait_for("document.readyState === 'complete'")
    assert "PSNR" in browser.evaluate("document.body.innerText")
    assert browser.outside_requests() == []


def test_a_request_leaving_the_machine_is_caught(browser: Browser) -> None:
    """The no-internet checks above see requests: a page asking a remote host is reported."""
    browser.outside_requests()
    browser.open("data:text/html,<img src='http://203.0.113.9/pixel.png'>")
    browser.wait_for("document.readyState === 'complete'", 30)
    assert browser.outside_requests() == ["http://203.0.113.9/pixel.png"]
