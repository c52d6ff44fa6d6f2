"""The blender loader: generated scenes, downscaling, bad input, and the real lego."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from atlas_core.data.blender import load_blender
from atlas_core.data.images import read_rgba
from atlas_core.errors import DataError

LEGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "nerf_synthetic" / "lego"


def copy_scene(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_loads_generated_scene(atlas_scene: Path) -> None:
    scene = load_blender(atlas_scene)
    train = scene.splits["train"]
    assert set(scene.splits) == {"train", "val", "test"}
    assert train.images.shape == (12, 24, 24, 4) and train.images.dtype == torch.uint8
    assert train.c2w.shape == (12, 4, 4)
    assert abs(train.focal - 0.5 * 24 / np.tan(0.5 * 0.6911112070083618)) < 1e-4
    assert scene.near == 2.0 and scene.far == 6.0


def test_downscale_halves_size_and_focal(atlas_scene: Path) -> None:
    full = load_blender(atlas_scene).splits["test"]
    half = load_blender(atlas_scene, downscale=2).splits["test"]
    assert half.images.shape[1:3] == (12, 12)
    assert abs(half.focal - full.focal / 2) < 1e-6
    # an opaque 2x2 block averages to its mean colour
    block = full.images[0, 10:12, 10:12].float()
    if (block[..., 3] == 255).all():
        expected = block[..., :3].mean(dim=(0, 1))
        assert torch.allclose(half.images[0, 5, 5, :3].float(), expected, atol=1.0)


def test_image_conversions(tmp_path: Path) -> None:
    gray = (np.arange(16, dtype=np.uint8) * 16).reshape(4, 4)
    iio.imwrite(tmp_path / "g.png", gray)
    rgba = read_rgba(tmp_path / "g.png")
    assert rgba.shape == (4, 4, 4) and (rgba[..., 3] == 255).all()
    assert (rgba[..., 0] == gray).all() and (rgba[..., 2] == gray).all()
    deep = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000
    iio.imwrite(tmp_path / "d.png", deep)
    rgba = read_rgba(tmp_path / "d.png")
    assert rgba.dtype == np.uint8 and rgba[3, 3, 1] == round(60000 / 257)
    iio.imwrite(tmp_path / "rgb.png", np.full((2, 3, 3), 7, dtype=np.uint8))
    rgba = read_rgba(tmp_path / "rgb.png")
    assert rgba.shape == (2, 3, 4) and (rgba[..., 3] == 255).all() and (rgba[..., :3] == 7).all()


def edit_json(root: Path, change) -> Path:  # noqa: ANN001
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("camera_angle_x"), "missing key 'camera_angle_x'"),
        (lambda m: m.update(frames=[]), "'frames' is empty"),
        (
            lambda m: m["frames"][1].pop("transform_matrix"),
            "frame 1: missing key 'transform_matrix'",
        ),
        (lambda m: m["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]), "must be 4x4"),
        (lambda m: m["frames"][0]["transform_matrix"][0].__setitem__(0, float("nan")), "NaN"),
        (
            lambda m: m["frames"][0].update(file_path="./train/nothing"),
            "nothing.png: image file is missing",
        ),
    ],
)
def test_bad_json_is_reported_with_file(atlas_scene, tmp_path, change, message) -> None:  # noqa: ANN001
    root = copy_scene(atlas_scene, tmp_path / "scene")
    edit_json(root, change)
    with pytest.raises(DataError, match=message) as info:
        load_blender(root)
    assert "\n" not in str(info.value)


def test_bad_files_are_reported(atlas_scene: Path, tmp_path: Path) -> None:
    root = copy_scene(atlas_scene, tmp_path / "scene")
    (root / "transforms_test.json").write_text('{"frames": [')
    with pytest.raises(DataError, match="transforms_test.json: malformed JSON"):
        load_blender(root)
    root = copy_scene(atlas_scene, tmp_path / "scene2")
    (root / "train" / "r_1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="r_1.png: not a readable image"):
        load_blender(root)
    root = copy_scene(atlas_scene, tmp_path / "scene3")
    iio.imwrite(root / "train" / "r_2.png", np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="r_2.png: image size 8x8 differs from 24x24"):
        load_blender(root)
    with pytest.raises(DataError, match="does not exist"):
        load_blender(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no transforms_train.json"):
        load_blender(tmp_path / "empty")


@pytest.mark.skipif(not LEGO.is_dir(), reason=f"{LEGO} not present (shared data only)")
def test_loads_real_lego() -> None:
    scene = load_blender(LEGO)
    assert len(scene.splits["train"]) == 100 and len(scene.splits["test"]) == 200
    assert scene.splits["train"].images.shape[1:] == (200, 200, 4)
    assert abs(scene.splits["train"].focal - 277.7777) < 1e-2
    for split in ("train", "val", "test"):
        assert (scene.splits[split].images[..., 3] < 255).any()  # transparent background


def test_view_extras_reach_the_rays(atlas_scene: Path) -> None:
    from atlas_core.data.scene import make_rays

    scene = load_blender(atlas_scene)
    train = scene.splits["train"]
    lights = torch.arange(len(train) * 3, dtype=torch.float32).reshape(-1, 3)
    train.extras["light"] = lights
    images = torch.tensor([3, 0, 3, 7])
    rays = make_rays(train, images, torch.zeros(4).long(), torch.ones(4).long(), scene)
    assert torch.equal(rays.extras["light"], lights[images])
    picked = rays[torch.tensor([2, 3])]
    assert torch.equal(picked.extras["light"], lights[torch.tensor([3, 7])])
    assert torch.equal(train.to("cpu").extras["light"], lights)


def test_exr_needs_openexr_and_names_the_file(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import sys

    path = tmp_path / "view.exr"
    path.write_bytes(b"v/1\x01")
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # as if openexr were not installed
    with pytest.raises(DataError, match=r"view\.exr: EXR images need the openexr package"):
        read_rgba(path)
