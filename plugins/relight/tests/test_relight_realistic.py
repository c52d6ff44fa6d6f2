"""The realistic generated point-light scene (``--kind nerv_point --size 128`` or more)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from atlas_plugin_relight import load_nerv_point, realistic_point
from atlas_plugin_relight.lights import POSITIONS

from atlas_core.api import linear_to_srgb
from atlas_core.testing import run_cli


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training and 2 test views at 128 px, written through the CLI."""
    out = tmp_path_factory.mktemp("realistic") / "scene"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(realistic_point, "VIEWS", {"train": 4, "test": 2})
        args = ["data", "synth", str(out), "--kind", "nerv_point", "--size", "128"]
        assert run_cli(args) == 0
    return out


def test_from_128_px_the_realistic_scene_is_written(scene_dir: Path, tmp_path: Path) -> None:
    scene = load_nerv_point(scene_dir)
    assert scene.splits["train"].images.shape == (4, 128, 128, 4)
    assert (scene_dir / "truth.npz").is_file()
    small = tmp_path / "small"
    assert run_cli(["data", "synth", str(small), "--kind", "nerv_point", "--size", "32"]) == 0
    assert not (small / "truth.npz").exists()  # below 128 px: the small sphere scene


def test_collocated_and_moving_lights_held_out_for_testing(scene_dir: Path) -> None:
    scene = load_nerv_point(scene_dir)
    train, test = scene.splits["train"], scene.splits["test"]
    lights = train.extras[POSITIONS][:, 0]
    centres = train.c2w[:, :3, 3]
    assert torch.allclose(lights[0::2], centres[0::2])  # collocated
    assert (lights[1::2] - centres[1::2]).norm(dim=-1).min() > 0.5  # moving
    held_out = test.extras[POSITIONS][:, 0]
    assert torch.cdist(held_out, lights).min() > 0.1  # test lights are new
    assert (lights[:, 2] > 0).all() and (held_out[:, 2] > 0).all()  # above the plate


def test_textured_with_shadows(scene_dir: Path) -> None:
    images = load_nerv_point(scene_dir).splits["train"].images.numpy()
    alpha = images[..., 3]
    assert 0.1 < (alpha > 127).mean() < 0.9
    rgb = images[..., :3][alpha > 250]
    assert len(np.unique(rgb // 8, axis=0)) > 200
    moving = images[1][..., :3][images[1][..., 3] > 250]  # a light from the side: shadows
    assert (moving.max(axis=1) < 4).mean() > 0.02


def test_srgb_images_encode_the_linear_render(tmp_path: Path) -> None:
    c2w = realistic_point.synth.camera_poses("test", 1, 0)[0]
    light = c2w[:3, 3]
    linear = realistic_point.render_point(c2w, light, 32, supersample=1) / 255.0
    encoded = realistic_point.render_point(c2w, light, 32, supersample=1, encoding="srgb") / 255.0
    lit = linear[..., :3] > 0.2  # where 8-bit linear values resolve the curve
    assert lit.sum() > 50
    expected = linear_to_srgb(torch.from_numpy(linear[..., :3])).numpy()
    assert np.abs(encoded[..., :3] - expected)[lit].max() <= 2.5 / 255
    assert (encoded[..., :3] >= linear[..., :3] - 1 / 255).all()  # the curve brightens
    assert np.array_equal(encoded[..., 3], linear[..., 3])
    with pytest.raises(ValueError, match="encoding 'linear' or 'srgb'"):
        realistic_point.write_realistic_point(tmp_path / "bad", 16, encoding="gamma")
