"""The realistic generated scan (``atlas data synth --kind dtu --size 128`` or more)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from atlas_plugin_dtu import load_dtu, realistic_scan

from atlas_core.api import realistic
from atlas_core.testing import run_cli


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic scan of 4 views at 128 px, written through the CLI."""
    out = tmp_path_factory.mktemp("realistic") / "scan"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(realistic_scan, "VIEWS", 4)
        assert run_cli(["data", "synth", str(out), "--kind", "dtu", "--size", "128"]) == 0
    return out


def test_from_128_px_the_realistic_scan_is_written(scan: Path, tmp_path: Path) -> None:
    scene = load_dtu(scan, test_every=0)
    views = scene.splits["train"]
    assert (views.width, views.height, len(views.names)) == (128, 96, 4)
    assert (scan / "truth.npz").is_file() and not (scan.parent / ".scan.partial").exists()
    small = tmp_path / "small"
    assert run_cli(["data", "synth", str(small), "--kind", "dtu", "--size", "64"]) == 0
    assert not (small / "truth.npz").exists()  # below 128 px: the small fast scan


def test_textured_masked_and_seen_from_above(scan: Path) -> None:
    views = load_dtu(scan, test_every=0).splits["train"]
    alpha = views.images[..., 3].numpy()
    assert 0.3 < (alpha > 127).mean() < 0.9  # objects and plate, with background around
    rgb = views.images[..., :3].numpy()[alpha > 250]
    assert len(np.unique(rgb // 8, axis=0)) > 300  # textured albedo, shading, highlights
    assert (views.c2w[:, 2, 3].numpy() > realistic.PLATE_TOP + 0.5).all()  # cameras above


def test_truth_points_lie_on_the_surfaces_above_the_plane(scan: Path) -> None:
    truth = np.load(scan / "truth.npz")
    points, plane = truth["points"], truth["plane"]
    height = points @ plane[:3] + plane[3]
    assert len(points) > 50_000 and height.min() > -1e-4  # the plate's top and up
    assert 0.8 < float(truth["size"]) < 2.0
    assert np.allclose(truth["scale_mat"], np.load(scan / "cameras.npz")["scale_mat_0"])
    extras = load_dtu(scan, test_every=0).splits["train"].extras
    assert np.allclose(extras["world_from_scene"][0].numpy(), truth["scale_mat"])  # for export


def test_shadows_and_a_glossy_highlight() -> None:
    light = np.array([[-0.27, 0.12, 2.0]])  # straight above the big sphere
    under = np.array([[-0.27, 0.12, realistic.PLATE_TOP + 1e-4]])  # plate below it
    lit = np.array([[0.7, -0.75, realistic.PLATE_TOP + 1e-4]])
    up = np.array([[0.0, 0.0, 1.0]])
    shade = lambda x, view: realistic.shade(x, np.array([0]), view, light, 4.0, 0.2)  # noqa: E731
    assert shade(under, up).sum() < 0.3 * shade(lit, up).sum()  # in the sphere's shadow
    top = np.array([[0.36, -0.22, realistic.PLATE_TOP + 0.4]])  # top of the glossy sphere
    mirror = realistic.shade(top, np.array([2]), up, np.array([[0.36, -0.22, 2.0]]), 4.0, 0.0)
    aside = realistic.shade(top, np.array([2]), np.array([[0.8, 0.0, 0.6]]),
                            np.array([[0.36, -0.22, 2.0]]), 4.0, 0.0)  # fmt: skip
    assert mirror.sum() > 2 * aside.sum()  # the highlight moves with the view
