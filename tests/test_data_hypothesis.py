"""Hostile datasets: every broken scene gives one DataError line naming the file, never a crash.

Hand-picked breakages go through the CLI (exit 2, one line, nothing written); generated
ones (hypothesis) corrupt a valid scene at random and call ``load_blender`` directly.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from atlas_core.cli import main
from atlas_core.data.blender import load_blender
from atlas_core.errors import DataError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def base_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 8x8 scene: 3 train, 1 val and 1 test view."""
    from atlas_core.data.synth import write_scene

    out = tmp_path_factory.mktemp("hostile") / "scene"
    return write_scene(out, size=8, views={"train": 3, "val": 1, "test": 1})


def edit(root: Path, change: Callable[[Any], Any], split: str = "train") -> None:
    """Rewrite ``transforms_{split}.json`` after ``change(meta)`` edited it in place."""
    path = root / f"transforms_{split}.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def frame0(key: str, value: Any) -> Callable[[Any], None]:
    """A change that sets one key of the first training frame."""
    return lambda meta: meta["frames"][0].update({key: value})


def write_png(path: Path, pixels: np.ndarray, color_type: int) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot): 0 gray, 4 gray+alpha, 6 RGBA."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[r].astype(">u2").tobytes() for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


HOSTILE: dict[str, tuple[Callable[[Path], Any], str]] = {
    "truncated json": (
        lambda r: (r / "transforms_train.json").write_bytes(
            (r / "transforms_train.json").read_bytes()[:77]
        ),
        "transforms_train.json: malformed JSON",
    ),
    "json list": (
        lambda r: (r / "transforms_val.json").write_text("[1, 2]"),
        "transforms_val.json: expected a JSON object at the top level, got list",
    ),
    "no fov": (
        lambda r: edit(r, lambda m: m.pop("camera_angle_x")),
        "missing key 'camera_angle_x'",
    ),
    "fov text": (
        lambda r: edit(r, lambda m: m.update(camera_angle_x="wide")),
        "camera_angle_x must",
    ),
    "fov bool": (lambda r: edit(r, lambda m: m.update(camera_angle_x=True)), "camera_angle_x must"),
    "no frames": (lambda r: edit(r, lambda m: m.pop("frames")), "missing key 'frames'"),
    "frames dict": (lambda r: edit(r, lambda m: m.update(frames={})), "'frames' must be a list"),
    "empty split": (
        lambda r: edit(r, lambda m: m.update(frames=[]), split="test"),
        "transforms_test.json: 'frames' is empty",
    ),
    "frame text": (
        lambda r: edit(r, lambda m: m.update(frames=["r_0"])),
        "frame 0 must be an object",
    ),
    "no file_path": (lambda r: edit(r, lambda m: m["frames"][0].pop("file_path")), "missing key"),
    "file_path int": (lambda r: edit(r, frame0("file_path", 3)), "must be a non-empty string"),
    "file_path empty": (lambda r: edit(r, frame0("file_path", "")), "must be a non-empty string"),
    "file_path up": (lambda r: edit(r, frame0("file_path", "../../x")), "outside the scene folder"),
    "file_path root": (lambda r: edit(r, frame0("file_path", ".")), "outside the scene folder"),
    "file_path abs": (lambda r: edit(r, frame0("file_path", "/etc/hosts")), "outside the scene"),
    "file_path newline": (lambda r: edit(r, frame0("file_path", "a\nb")), "control characters"),
    "no pose": (lambda r: edit(r, lambda m: m["frames"][0].pop("transform_matrix")), "missing key"),
    "pose 3x3": (lambda r: edit(r, frame0("transform_matrix", np.eye(3).tolist())), "must be 4x4"),
    "pose text": (lambda r: edit(r, frame0("transform_matrix", "eye")), "not a numeric 4x4"),
    "pose dict": (lambda r: edit(r, frame0("transform_matrix", {"a": 1})), "not a numeric 4x4"),
    "pose huge int": (
        lambda r: edit(r, frame0("transform_matrix", [[10**400] * 4] * 4)),
        "numeric",
    ),
    "pose inf": (
        lambda r: edit(r, frame0("transform_matrix", [[float("inf")] * 4] * 4)),
        "has NaN or Inf",
    ),
    "pose zero": (
        lambda r: edit(r, frame0("transform_matrix", np.zeros((4, 4)).tolist())),
        "degen",
    ),
    "image missing": (
        lambda r: (r / "train" / "r_1.png").unlink(),
        "r_1.png: image file is missing",
    ),
    "image text": (lambda r: (r / "train" / "r_1.png").write_text("hello"), "not a readable image"),
    "image empty": (lambda r: (r / "train" / "r_1.png").write_bytes(b""), "image file is empty"),
    "image cut": (
        lambda r: (r / "val" / "r_0.png").write_bytes((r / "val" / "r_0.png").read_bytes()[:60]),
        "val/r_0.png: not a readable image",
    ),
    "image size": (
        lambda r: iio.imwrite(r / "train" / "r_2.png", np.zeros((4, 4, 4), np.uint8)),
        "r_2.png: image size 4x4 differs from 8x8",
    ),
    "other kind": (  # detected as llff (data.kind=auto), whose file is then refused
        lambda r: (
            [p.unlink() for p in r.glob("transforms_*.json")]
            + [(r / "poses_bounds.npy").write_bytes(b"")]
        ),
        "poses_bounds.npy: not a readable .npy array",
    ),
    "empty folder": (
        lambda r: [shutil.rmtree(p) if p.is_dir() else p.unlink() for p in r.iterdir()],
        "no known data layout: looked for transforms_train.json",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_scene_exits_2_with_one_line(base_scene, tmp_path, capsys, case) -> None:  # noqa: ANN001
    root = shutil.copytree(base_scene, tmp_path / "scene")
    breakage, message = HOSTILE[case]
    breakage(root)
    out = tmp_path / "out"
    assert main(["run", "--data", str(root), "--out", str(out), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"atlas: error: {root}") and message in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_downscale_larger_than_images(base_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    args = ["run", "--data", str(base_scene), "--out", str(tmp_path / "o"), "--set"]
    assert main([*args, "data.downscale=16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "transforms_train.json: downscale 16 is larger than the 8x8 images" in err


def test_broken_data_leaves_a_run_folder_untouched(atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    root = shutil.copytree(atlas_scene, tmp_path / "scene")
    out = tmp_path / "run"
    quick = ["--set", "train.batch_rays=16", "--set", "sampler.samples=4", "--eval-views", "1"]
    quick += ["--set", "eval.video_frames=0"]
    assert main(["run", "--data", str(root), "--out", str(out), "--max-steps", "2", *quick]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (root / "transforms_train.json").write_text('{"frames": [')
    capsys.readouterr()
    assert main(["run", "--resume", "--out", str(out), "--max-steps", "4"]) == 2
    assert main(["eval", str(out)]) == 2
    assert capsys.readouterr().err.count("malformed JSON") == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_image_formats_are_converted(base_scene: Path, tmp_path: Path) -> None:
    root = shutil.copytree(base_scene, tmp_path / "scene")
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(np.stack([ramp, 255 - ramp], axis=2)).save(root / "train" / "r_0.png")
    palette = Image.new("P", (8, 8))
    palette.putdata((ramp > 100).astype(np.uint8).ravel().tolist())
    palette.putpalette([10, 20, 30, 200, 100, 50])
    palette.save(root / "train" / "r_1.png", transparency=0)
    deep = np.arange(8 * 8 * 4, dtype=np.uint16).reshape(8, 8, 4) * 250
    write_png(root / "train" / "r_2.png", deep, color_type=6)
    write_png(root / "test" / "r_0.png", deep[..., :2], color_type=4)
    iio.imwrite(root / "val" / "r_0.png", np.full((8, 8, 3), 9, np.uint8))
    scene = load_blender(root)
    gray_alpha, indexed, rgba16 = scene.splits["train"].images.numpy()
    assert (gray_alpha[..., 0] == ramp).all() and (gray_alpha[..., 3] == 255 - ramp).all()
    assert (indexed[ramp > 100, :3] == [200, 100, 50]).all() and (
        indexed[ramp > 100, 3] == 255
    ).all()
    assert (indexed[ramp <= 100, 3] == 0).all()  # the transparent palette entry
    assert np.abs(rgba16.astype(int) - deep // 257).max() <= 1
    assert scene.splits["test"].images.shape == (1, 8, 8, 4)
    assert (scene.splits["val"].images.numpy() == [9, 9, 9, 255]).all()


# -- generated corruptions --------------------------------------------------------------------


def positions(tree: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every position in a JSON tree, the root included, as a key path."""
    yield path
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        yield from positions(value, (*path, key))


def pick_json(root: Path, data: st.DataObject) -> Path:
    """One of the scene's JSON files."""
    return data.draw(st.sampled_from(sorted(root.glob("transforms_*.json"))), label="file")


def pick_image(root: Path, data: st.DataObject) -> Path:
    """One of the scene's images."""
    return data.draw(st.sampled_from(sorted(root.rglob("*.png"))), label="image")


def truncate_json(root: Path, data: st.DataObject) -> None:
    """Cut a JSON file at a random byte."""
    path = pick_json(root, data)
    raw = path.read_bytes()
    if not raw:
        return
    path.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="offset")])


def rewrite_json(root: Path, data: st.DataObject, delete: bool) -> None:
    """Delete a random key (or item), or replace a random value with random JSON."""
    path = pick_json(root, data)
    try:
        tree = json.loads(path.read_text())
    except ValueError:
        return  # already broken by an earlier corruption
    where = list(positions(tree))[1 if delete else 0 :]
    if not where:
        return
    key_path = data.draw(st.sampled_from(where), label="position")
    if not key_path:
        tree = data.draw(JSON, label="document")
    else:
        parent = tree
        for key in key_path[:-1]:
            parent = parent[key]
        if delete:
            del parent[key_path[-1]]
        else:
            parent[key_path[-1]] = data.draw(JSON, label="value")
    path.write_text(json.dumps(tree))


def corrupt_image(root: Path, data: st.DataObject) -> None:
    """Truncate an image, overwrite some of its bytes, or replace it with random bytes."""
    path = pick_image(root, data)
    raw = bytearray(path.read_bytes())
    if not raw:
        return
    how = data.draw(st.sampled_from(["truncate", "overwrite", "random"]), label="how")
    start = data.draw(st.integers(0, len(raw) - 1), label="start")
    if how == "truncate":
        raw = raw[:start]
    elif how == "overwrite":
        patch = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
        raw[start : start + len(patch)] = patch
    else:
        raw = bytearray(data.draw(st.binary(max_size=64), label="bytes"))
    path.write_bytes(bytes(raw))


CORRUPTIONS = {
    "truncate json": truncate_json,
    "delete key": lambda root, data: rewrite_json(root, data, delete=True),
    "replace value": lambda root, data: rewrite_json(root, data, delete=False),
    "corrupt image": corrupt_image,
}


def check_loads_or_reports(base: Path, data: st.DataObject, kinds: list[str]) -> None:
    """Corrupt a copy of ``base`` 1-3 times; loading succeeds or raises a one-line DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        root = shutil.copytree(base, Path(tmp) / "scene")
        for _ in range(data.draw(st.integers(1, 3), label="count")):
            CORRUPTIONS[data.draw(st.sampled_from(kinds), label="corruption")](root, data)
        try:
            load_blender(root)
        except DataError as exc:
            message = str(exc)
            assert message.count("\n") == 0 and "\r" not in message, message
            assert str(root) in message, message


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
@SETTINGS
@given(data=st.data())
def test_each_corruption_loads_or_reports(base_scene, kind, data) -> None:  # noqa: ANN001
    check_loads_or_reports(base_scene, data, [kind])


@SETTINGS
@given(data=st.data())
def test_mixed_corruptions_load_or_report(base_scene, data) -> None:  # noqa: ANN001
    check_loads_or_reports(base_scene, data, list(CORRUPTIONS))
