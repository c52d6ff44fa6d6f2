"""The pixel-single data kind, its generator, and bad input naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from atlas_plugin_pixelnerf.data import PixelScene, load_pixel_single
from atlas_plugin_pixelnerf.synth import main as synth_main
from atlas_plugin_pixelnerf.synth import random_object, write_objects

from atlas_core.api import DataError, image_rays
from atlas_core.testing import DatasetContract, run_cli


class TestPixelSingleData(DatasetContract):
    name = "pixel-single"
    plugins = ("pixelnerf",)

    @pytest.fixture
    def contract_data(self, objects_data: Path) -> Path:
        """The generated multi-object folder."""
        return objects_data


def test_bank_and_splits(objects_data: Path) -> None:
    scene = load_pixel_single(objects_data)
    assert isinstance(scene, PixelScene) and scene.bank is not None
    bank = scene.bank
    assert bank.images.shape == (8, 4, 16, 16, 4) and bank.c2w.shape == (8, 4, 4, 4)
    assert bank.test_objects == [6, 7]
    train, test = scene.split("train"), scene.split("test")
    assert len(train) == 6 * 4 and set(train.extras["object"].tolist()) == set(range(6))
    assert len(test) == 2 * 3  # view 0 of each held-out object is its source, not a target
    assert test.extras["object"].tolist() == [6, 6, 6, 7, 7, 7]
    assert test.extras["view"].tolist() == [1, 2, 3, 1, 2, 3]
    assert torch.equal(test.images[4], bank.images[7, 2])
    assert torch.equal(test.c2w[4], bank.c2w[7, 2])
    rays = image_rays(test, 4, scene)
    assert bool((rays.extras["object"] == 7).all()) and bool((rays.extras["view"] == 2).all())


def test_objects_differ_and_fill_part_of_each_view(objects_data: Path) -> None:
    bank = load_pixel_single(objects_data).bank
    coverage = (bank.images[..., 3] > 0).float().mean(dim=(2, 3))  # [objects, views]
    assert bool((coverage > 0.02).all()) and bool((coverage < 0.8).all())
    first = bank.images[:, 0, ..., :3].float()
    assert float((first[0] - first[1]).abs().mean()) > 1.0  # not the same object twice
    assert random_object(3) == random_object(3) and random_object(3) != random_object(4)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a = write_objects(tmp_path / "a", objects=1, test_objects=1, views=2, size=8, seed=5)
    b = write_objects(tmp_path / "b", objects=1, test_objects=1, views=2, size=8, seed=5)
    for file in sorted(a.rglob("*.png")):
        assert file.read_bytes() == (b / file.relative_to(a)).read_bytes()


def test_generator_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    args = [str(out), "--objects", "2", "--test-objects", "1", "--views", "3", "--size", "8"]
    assert synth_main(args) == 0
    assert json.loads((out / "objects.json").read_text())["test"] == ["obj_002"]
    assert synth_main(args) == 2  # the folder is not empty now
    assert f"{out}: " in capsys.readouterr().err
    assert synth_main([str(tmp_path / "e"), "--views", "1"]) == 2


def copy(objects_data: Path, tmp_path: Path) -> Path:
    """A writable copy of the generated data."""
    return Path(shutil.copytree(objects_data, tmp_path / "data"))


def edit_index(root: Path, **changes: object) -> None:
    """Change keys of objects.json."""
    index = json.loads((root / "objects.json").read_text())
    index.update(changes)
    (root / "objects.json").write_text(json.dumps(index))


def test_bad_data_names_the_file(objects_data: Path, tmp_path: Path) -> None:
    root = copy(objects_data, tmp_path)
    edit_index(root, test=[])
    with pytest.raises(DataError, match=r"objects.json: 'test' must be a non-empty list"):
        load_pixel_single(root)
    edit_index(root, test=["obj_000"])
    with pytest.raises(DataError, match=r"objects.json: objects in both train and test"):
        load_pixel_single(root)
    edit_index(root, test=["obj_404"])
    with pytest.raises(DataError, match=r"obj_404/transforms_train.json: file is missing"):
        load_pixel_single(root)
    edit_index(root, test=["obj_007"])
    meta_path = root / "obj_007" / "transforms_train.json"
    meta = json.loads(meta_path.read_text())
    meta["frames"] = meta["frames"][:3]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"obj_007/transforms_train.json: 3 views, but obj_000"):
        load_pixel_single(root)
    with pytest.raises(DataError, match=r"objects.json: file is missing"):
        load_pixel_single(tmp_path)


def test_bad_data_exits_2_from_the_cli(
    objects_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy(objects_data, tmp_path)
    (root / "obj_003" / "train" / "r_1.png").write_bytes(b"not a png")
    args = ["run", "--data", str(root), "--data-kind", "pixel-single", "--plugins", "pixelnerf",
            "--out", str(tmp_path / "run"), "--max-steps", "1"]  # fmt: skip
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert "obj_003/train/r_1.png: not a readable image" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_data_options(objects_data: Path) -> None:
    full = load_pixel_single(objects_data)
    half = load_pixel_single(objects_data, downscale=2, near=1.0, far=7.0, bound=1.2)
    assert half.bank.images.shape == (8, 4, 8, 8, 4) and half.split("test").height == 8
    assert half.bank.focal == pytest.approx(full.bank.focal / 2)
    assert (half.near, half.far, half.bounds) == (1.0, 7.0, (-1.2, -1.2, -1.2, 1.2, 1.2, 1.2))
    with pytest.raises(DataError, match="downscale must be >= 1"):
        load_pixel_single(objects_data, downscale=0)
    with pytest.raises(DataError, match="need 0 < near < far"):
        load_pixel_single(objects_data, near=3.0, far=2.0)
