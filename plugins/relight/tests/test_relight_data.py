"""The nerv_point data kind: both layouts, light fields, collocated lights, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from atlas_plugin_relight.data import load_nerv_point
from atlas_plugin_relight.lights import POSITIONS, POWER, SCALED
from atlas_plugin_relight.synth import INTENSITY, write_point_scene

from atlas_core.api import DataError, make_rays
from atlas_core.testing import run_cli


@pytest.fixture(scope="module")
def point_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8x8 generated scene, 4 train and 2 test views."""
    return write_point_scene(tmp_path_factory.mktemp("nerv") / "s", 8, {"train": 4, "test": 2})


def edit(scene: Path, tmp_path: Path, change) -> Path:  # noqa: ANN001
    """A copy of the scene whose train frames went through ``change(frames)``."""
    copy = tmp_path / "copy"
    shutil.copytree(scene, copy)
    path = copy / "transforms_train.json"
    meta = json.loads(path.read_text())
    change(meta["frames"])
    path.write_text(json.dumps(meta))
    return copy


def test_root_layout_puts_each_frames_light_on_its_rays(point_scene: Path) -> None:
    scene = load_nerv_point(point_scene)
    meta = json.loads((point_scene / "transforms_train.json").read_text())
    views = scene.splits["train"]
    expect = torch.tensor([frame["light_loc"] for frame in meta["frames"]])
    assert torch.allclose(views.extras[POSITIONS][:, 0], expect)
    assert torch.allclose(views.extras[POWER], torch.full((4, 1, 3), INTENSITY))
    assert views.extras[SCALED].tolist() == [1.0] * 4
    index = torch.tensor([2, 0])
    rays = make_rays(views, index, torch.tensor([1, 3]), torch.tensor([4, 5]), scene)
    assert torch.allclose(rays.extras[POSITIONS][:, 0], expect[index])
    assert set(scene.splits) == {"train", "test"}


def test_nerv_sub_folder_layout(point_scene: Path, tmp_path: Path) -> None:
    root = tmp_path / "nerv"
    for split in ("train", "test"):
        folder = root / f"{split}_point"
        shutil.copytree(point_scene / split, folder / split)
        name = "transforms.json" if split == "test" else f"transforms_{split}.json"
        shutil.copy(point_scene / f"transforms_{split}.json", folder / name)
    scene = load_nerv_point(root)
    reference = load_nerv_point(point_scene)
    for split in ("train", "test"):
        assert torch.equal(scene.splits[split].images, reference.splits[split].images)
        assert torch.equal(
            scene.splits[split].extras[POSITIONS], reference.splits[split].extras[POSITIONS]
        )


def test_several_lights_weights_and_missing_intensity(point_scene: Path, tmp_path: Path) -> None:
    def change(frames: list) -> None:
        for frame in frames:
            frame.pop("light_intensity")
        frames[0]["light_loc"] = [[0, 0, 3], [1, 0, 3]]
        frames[0]["light_weights"] = [[1, 0.5, 0.25], [0, 1, 0]]
        frames[1]["light_weights"] = [0.2, 0.3, 0.4]
        frames[2]["light_intensity"] = 2.5

    extras = load_nerv_point(edit(point_scene, tmp_path, change)).splits["train"].extras
    assert extras[POSITIONS].shape == (4, 2, 3) and extras[POWER].shape == (4, 2, 3)
    assert extras[POWER][0].tolist() == [[1, 0.5, 0.25], [0, 1, 0]]
    assert torch.allclose(extras[POWER][1, 0], torch.tensor([0.2, 0.3, 0.4]))
    assert float(extras[POWER][1:, 1].abs().sum()) == 0.0  # one-light frames padded dark
    assert extras[POWER][2, 0].tolist() == [2.5, 2.5, 2.5]
    assert extras[SCALED].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_frames_without_lights_are_collocated(point_scene: Path, tmp_path: Path) -> None:
    def change(frames: list) -> None:
        for frame in frames:
            frame.pop("light_loc")

    views = load_nerv_point(edit(point_scene, tmp_path, change)).splits["train"]
    assert torch.allclose(views.extras[POSITIONS][:, 0], views.c2w[:, :3, 3])


BAD = [
    (lambda f: f[1].pop("light_loc"), "frame 1: missing key 'light_loc'"),
    (lambda f: f[0].update(light_loc=[1, 2]), "frame 0: light_loc must be [x, y, z]"),
    (lambda f: f[0].update(light_loc="up"), "frame 0: light_loc must be numbers"),
    (lambda f: f[0].update(light_loc=[0, float("nan"), 1]), "frame 0: light_loc has NaN"),
    (lambda f: f[2].update(light_intensity=-1), "frame 2: light_intensity must be a number > 0"),
    (lambda f: f[0].update(light_weights=[[1, 1, 1], [1, 1, 1]]), "frame 0: light_weights must"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_light_fields_name_file_and_frame(
    point_scene: Path,
    tmp_path: Path,
    change,
    message: str,  # noqa: ANN001
) -> None:
    root = edit(point_scene, tmp_path, change)
    with pytest.raises(DataError, match="transforms_train.json: " + message.replace("[", r"\[")):
        load_nerv_point(root)


def test_cli_exits_2_naming_the_file(point_scene: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    root = edit(point_scene, tmp_path, BAD[0][0])
    args = ["run", "--data", str(root), "--data-kind", "nerv_point", "--plugins", "volsdf,relight"]
    assert run_cli([*args, "--out", str(tmp_path / "out"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("atlas: error:") and "transforms_train.json" in err and "light_loc" in err


def test_missing_folder_and_damaged_exr(point_scene: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a nerv_point scene"):
        load_nerv_point(tmp_path)
    root = edit(point_scene, tmp_path, lambda f: f[0].update(file_path="./train/r_0.exr"))
    (root / "train" / "r_0.exr").write_bytes(b"v/1\x01not really an exr")
    with pytest.raises(DataError, match=r"r_0\.exr: not a readable EXR image"):
        load_nerv_point(root)
    assert np.isfinite(load_nerv_point(point_scene).splits["train"].extras[POWER].numpy()).all()


def test_exr_images_load_like_their_png(point_scene: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio
    import OpenEXR

    root = edit(point_scene, tmp_path, lambda f: f[0].update(file_path="./train/r_0.exr"))
    rgba = iio.imread(root / "train" / "r_0.png").astype(np.float32) / 255.0
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    hdr = rgba.copy()
    hdr[0, 0, :3] = 4.0  # above 1: clamped like any float image
    with OpenEXR.File(header, {"RGBA": hdr}) as exr:
        exr.write(str(root / "train" / "r_0.exr"))
    from_exr = load_nerv_point(root).splits["train"].images[0].numpy()
    from_png = load_nerv_point(point_scene).splits["train"].images[0].numpy()
    assert np.abs(from_exr.astype(int) - from_png.astype(int))[1:].max() <= 1
    assert (from_exr[0, 0, :3] == 255).all()
