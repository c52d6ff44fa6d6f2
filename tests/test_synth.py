"""Tests for the procedural NeRF-synthetic scene generator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from atlas_core.data import synth

SMALL_VIEWS = {"train": 3, "val": 1, "test": 2}


def _load(root: Path, split: str) -> tuple[dict, list[np.ndarray]]:
    """Transforms JSON and images of one split."""
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    images = [iio.imread(root / f"{f['file_path']}.png") for f in meta["frames"]]
    return meta, images


def _pixel_rays(c2w: np.ndarray, size: int, angle_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Origin and unit directions [size, size, 3] through pixel centres (test's own code)."""
    f = 0.5 * size / math.tan(0.5 * angle_x)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    d = np.stack(
        [
            (cols + 0.5 - size / 2) / f,
            -(rows + 0.5 - size / 2) / f,
            -np.ones(rows.shape),
        ],
        axis=-1,
    )
    d = d @ c2w[:3, :3].T
    return c2w[:3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _miss_distance(origin: np.ndarray, dirs: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Closest distance between ``center`` and each ray (rays pointing away count fully)."""
    oc = center - origin
    t = np.maximum(dirs @ oc, 0.0)
    return np.linalg.norm(oc - t[..., None] * dirs, axis=-1)


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny scene: 16 px, 3 train, 1 val and 2 test views."""
    return synth.write_scene(tmp_path_factory.mktemp("synth") / "scene", size=16, views=SMALL_VIEWS)


def test_files_and_json_structure(small_scene: Path) -> None:
    """Every split has its JSON and PNGs in NeRF-synthetic layout."""
    names = sorted(p.name for p in small_scene.iterdir())
    assert names == [
        "test",
        "train",
        "transforms_test.json",
        "transforms_train.json",
        "transforms_val.json",
        "val",
    ]
    for split, count in SMALL_VIEWS.items():
        meta, images = _load(small_scene, split)
        assert set(meta) == {"camera_angle_x", "frames"}
        assert meta["camera_angle_x"] == pytest.approx(0.6911112070083618, abs=0)
        assert len(meta["frames"]) == count == len(images)
        assert sorted(p.name for p in (small_scene / split).iterdir()) == sorted(
            f"r_{i}.png" for i in range(count)
        )
        for i, frame in enumerate(meta["frames"]):
            assert frame["file_path"] == f"./{split}/r_{i}"
            assert frame["rotation"] == 0.0
            m = np.array(frame["transform_matrix"])
            assert m.shape == (4, 4)
            np.testing.assert_array_equal(m[3], [0.0, 0.0, 0.0, 1.0])


def test_images_rgba_with_object_and_background(small_scene: Path) -> None:
    """Images are 16x16 RGBA uint8, hold the object, and are transparent elsewhere."""
    for split in SMALL_VIEWS:
        _, images = _load(small_scene, split)
        for im in images:
            assert im.dtype == np.uint8 and im.shape == (16, 16, 4)
            alpha = im[..., 3]
            assert (alpha == 255).any() and (alpha == 0).any()
            assert (im[alpha == 0, :3] == 0).all()
            assert (im[alpha > 0, :3].max(axis=-1) > 0).all()
            # The whole scene is in view: the one-pixel border is empty.
            border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
            assert (border == 0).all()


def test_supersampling_antialiases_edges(tmp_path: Path) -> None:
    """supersample=2 gives fractional alpha on silhouettes; supersample=1 gives none."""
    c2w = synth.camera_poses("train", 1)[0]
    hard = synth.render_view(c2w, 24, supersample=1)[..., 3]
    soft = synth.render_view(c2w, 24, supersample=2)[..., 3]
    assert set(np.unique(hard)) == {0, 255}
    assert ((soft > 0) & (soft < 255)).any()
    assert set(np.unique(soft)) <= {0, 64, 128, 191, 255}


def test_cameras_look_at_origin_from_upper_hemisphere(small_scene: Path) -> None:
    """The origin projects to the image centre; cameras are at radius 4 with z > 0."""
    eyes = {}
    for split in SMALL_VIEWS:
        meta, _ = _load(small_scene, split)
        size = 16
        f = 0.5 * size / math.tan(0.5 * meta["camera_angle_x"])
        eyes[split] = []
        for frame in meta["frames"]:
            c2w = np.array(frame["transform_matrix"])
            rot, eye = c2w[:3, :3], c2w[:3, 3]
            np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
            assert np.linalg.det(rot) == pytest.approx(1.0)
            assert abs(rot[2, 0]) < 1e-12  # no roll: the right axis is horizontal
            assert rot[2, 1] > 0.0  # the image up axis points to world +Z
            assert np.linalg.norm(eye) == pytest.approx(4.0, abs=1e-12)
            assert eye[2] > 0.0
            elevation = math.degrees(math.asin(eye[2] / 4.0))
            assert 10.0 - 1e-9 <= elevation <= 75.0 + 1e-9
            x, y, z = rot.T @ (np.zeros(3) - eye)
            assert z < 0.0  # in front of the camera
            col, row = f * x / -z + size / 2, -f * y / -z + size / 2
            assert col == pytest.approx(size / 2, abs=1e-9)
            assert row == pytest.approx(size / 2, abs=1e-9)
            eyes[split].append(eye)
    train = np.array(eyes["train"])
    for split in ("val", "test"):
        for eye in eyes[split]:
            assert np.linalg.norm(train - eye, axis=-1).min() > 0.05


def test_train_views_are_well_spread() -> None:
    """The default 100 train views cover all azimuths and the elevation band."""
    eyes = np.array([c2w[:3, 3] for c2w in synth.camera_poses("train", 100)])
    elevation = np.degrees(np.arcsin(eyes[:, 2] / 4.0))
    assert elevation.min() < 15.0 and elevation.max() > 70.0
    azimuth = np.arctan2(eyes[:, 1], eyes[:, 0])
    counts = np.histogram(azimuth, bins=8, range=(-math.pi, math.pi))[0]
    assert counts.min() >= 8
    gaps = np.linalg.norm(eyes[:, None] - eyes[None], axis=-1) + 1e9 * np.eye(100)
    assert gaps.min() > 0.3
    test = np.array([c2w[:3, 3] for c2w in synth.camera_poses("test", 16)])
    step = np.diff(np.unwrap(np.arctan2(test[:, 1], test[:, 0])))
    np.testing.assert_allclose(step, 2 * math.pi / 16)


def test_ray_directions_match_package_cameras() -> None:
    """Pixel rays agree with :func:`atlas_core.cameras.pixel_rays` and ``look_at``."""
    torch = pytest.importorskip("torch")
    cameras = pytest.importorskip("atlas_core.cameras")
    c2w = synth.camera_poses("val", 3, seed=5)[1]
    eye, up = (
        torch.tensor(c2w[:3, 3]),
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
    )
    ref = cameras.look_at(eye, torch.zeros(3, dtype=torch.float64), up)
    np.testing.assert_allclose(ref.numpy(), c2w, atol=1e-12)
    size = 12
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    focal = synth.focal_length(size)
    _, dirs, _ = cameras.pixel_rays(
        torch.tensor(c2w, dtype=torch.float32), cols, rows, focal, size, size
    )
    np.testing.assert_allclose(synth.ray_directions(c2w, size), dirs.numpy(), atol=1e-6)


def test_ray_tracer_hand_check(tmp_path: Path) -> None:
    """Alpha and colour agree with the test's own intersection with the checker sphere."""
    size = 17  # odd, so the centre pixel's ray passes through the origin
    root = synth.write_scene(
        tmp_path / "scene", size=size, views={"train": 10}, seed=3, supersample=1
    )
    meta, images = _load(root, "train")
    sphere = synth.SHAPES[0]
    assert isinstance(sphere, synth.CheckerSphere) and sphere.center == (0.0, 0.0, 0.0)
    others = []  # bounding balls of the other shapes, for an occlusion test
    inner = []  # balls inside the other shapes: rays through them must be opaque
    for shape in synth.SHAPES[1:]:
        if isinstance(shape, synth.Box):
            others.append((np.array(shape.center), float(np.linalg.norm(shape.half))))
            inner.append((np.array(shape.center), min(shape.half)))
        elif isinstance(shape, synth.Cylinder):
            z0, z1 = shape.z_range
            c = np.array([*shape.center_xy, 0.5 * (z0 + z1)])
            others.append((c, math.hypot(shape.radius, 0.5 * (z1 - z0))))
            inner.append((c, min(shape.radius, 0.5 * (z1 - z0))))
        else:
            others.append((np.array(shape.center), shape.radius))
            inner.append((np.array(shape.center), shape.radius))
    covered = 0
    light = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
    np.testing.assert_allclose(synth.LIGHT_DIR, light)
    colour_checks = 0
    for frame, im in zip(meta["frames"], images, strict=True):
        c2w = np.array(frame["transform_matrix"])
        eye, dirs = _pixel_rays(c2w, size, meta["camera_angle_x"])
        alpha = im[..., 3]
        assert set(np.unique(alpha)) <= {0, 255}
        # Rays through the sphere (with a margin) are opaque, rays missing the bounding
        # ball of the scene are transparent.
        miss = _miss_distance(eye, dirs, np.zeros(3))
        assert (alpha[miss < sphere.radius - 1e-6] == 255).all()
        for c, r in inner:
            inside = _miss_distance(eye, dirs, c) < r - 1e-6
            assert (alpha[inside] == 255).all()
            covered += int(inside.sum())
        assert (alpha[miss > synth.SCENE_RADIUS] == 0).all()
        assert (miss > synth.SCENE_RADIUS).sum() > size * size // 4
        centre = im[size // 2, size // 2]
        assert centre[3] == 255 and miss[size // 2, size // 2] < 1e-9
        # Unless another shape may be in the way, the centre pixel shows the sphere's
        # front point, lit by the fixed light, in one of the two checker colours.
        d = dirs[size // 2, size // 2]
        t_hit = 4.0 - sphere.radius
        occluded = any(
            _miss_distance(eye, d, c) < r and d @ (c - eye) - r < t_hit for c, r in others
        )
        if occluded:
            continue
        normal = eye / np.linalg.norm(eye)
        shade = 0.35 + 0.65 * max(0.0, float(normal @ light))
        expected = [np.round(np.array(c) * shade * 255) for c in sphere.colors]
        err = min(np.abs(centre[:3].astype(float) - e).max() for e in expected)
        assert err <= 1.0
        colour_checks += 1
    assert colour_checks >= 5
    assert covered > 0


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with one seed write identical files; another seed moves the cameras."""
    kwargs = {"size": 16, "views": SMALL_VIEWS}
    a = synth.write_scene(tmp_path / "a", seed=7, **kwargs)
    b = synth.write_scene(tmp_path / "b", seed=7, **kwargs)
    c = synth.write_scene(tmp_path / "c", seed=8, **kwargs)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 3 + sum(SMALL_VIEWS.values())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert (a / "transforms_train.json").read_bytes() != (c / "transforms_train.json").read_bytes()


def test_refuses_non_empty_folder_and_creates_parents(tmp_path: Path) -> None:
    """A non-empty target raises FileExistsError; empty or missing targets are fine."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        synth.write_scene(busy, size=16, views={"train": 1})
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synth.write_scene(empty, size=16, views={"train": 1}) == empty
    assert (empty / "train" / "r_0.png").is_file()
    nested = tmp_path / "x" / "y" / "scene"
    assert synth.write_scene(str(nested), size=16, views={"val": 1}) == nested
    assert (nested / "transforms_val.json").is_file()
    assert not (nested / "train").exists()


def test_scene_bounds_bracket_the_scene() -> None:
    """near/far bracket every distance from a camera to the scene's bounding ball."""
    near, far = synth.scene_bounds()
    assert 0.0 < near < far
    assert near <= synth.CAMERA_RADIUS - synth.SCENE_RADIUS
    assert far >= synth.CAMERA_RADIUS + synth.SCENE_RADIUS
    # The bounding ball is inside the field of view, so every camera sees the whole scene.
    assert synth.SCENE_RADIUS / synth.CAMERA_RADIUS < math.sin(0.5 * synth.CAMERA_ANGLE_X)
