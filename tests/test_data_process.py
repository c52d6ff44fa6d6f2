"""``atlas data process``: structure from motion on rendered photos and a video of a
textured scene with known cameras (pycolmap on the CPU)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from atlas_core.cli import main
from atlas_core.data.colmap_model import read_model
from atlas_core.data.nerfstudio import load_nerfstudio
from atlas_core.data.process.align import align_error, similarity
from atlas_core.data.process.frames import candidate_runs, extract_frames, sharpness
from atlas_core.data.process.pipeline import RETRY_BELOW
from atlas_core.data.process.writer import read_points, write_points

pytest.importorskip("pycolmap")
pytestmark = pytest.mark.slow

WIDTH, HEIGHT, FOCAL = 160, 128, 130.0
RADIUS, ELEVATION, TARGET = 5.0, np.radians(30.0), np.array([0.0, 0.0, 0.4])
RING = 2 * RADIUS * np.cos(ELEVATION)  # diameter of the cameras' ring
PHOTOS = 14


def noise_texture(rng: np.random.Generator, size: int = 256) -> torch.Tensor:
    """Smooth random colours at several scales [1, 3, size, size] (blobs for SIFT)."""
    tex = torch.zeros(1, 3, size, size)
    for cells, weight in ((4, 1.0), (8, 0.8), (16, 0.6), (32, 0.45), (64, 0.3)):
        grid = torch.from_numpy(rng.random((1, 3, cells + 1, cells + 1))).float()
        up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear")
        tex += weight * up
    tex -= tex.amin(dim=(2, 3), keepdim=True)
    return tex / tex.amax(dim=(2, 3), keepdim=True)


def scene_quads(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]]:
    """A textured ground square and a box on it: (corner, edge a, edge b, texture)."""
    rng = np.random.default_rng(seed)
    h, s = 1.2, 0.7
    faces = [
        ((-3, -3, 0), (6, 0, 0), (0, 6, 0)),
        ((s, -s, 0), (0, 2 * s, 0), (0, 0, h)),
        ((-s, -s, 0), (0, 2 * s, 0), (0, 0, h)),
        ((-s, s, 0), (2 * s, 0, 0), (0, 0, h)),
        ((-s, -s, 0), (2 * s, 0, 0), (0, 0, h)),
        ((-s, -s, h), (2 * s, 0, 0), (0, 2 * s, 0)),
    ]
    return [(np.array(o, float), np.array(a, float), np.array(b, float), noise_texture(rng))
            for o, a, b in faces]  # fmt: skip


def look_at(eye: np.ndarray) -> np.ndarray:
    """Camera-to-world (OpenGL axes) at ``eye`` looking at the scene's centre, +Z up."""
    back = (eye - TARGET) / np.linalg.norm(eye - TARGET)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, np.cross(back, right), back], axis=1)
    c2w[:3, 3] = eye
    return c2w


def ring(count: int, arc: float = 200.0) -> list[np.ndarray]:
    """Eyes on an arc of the ring around the scene."""
    angles = np.radians(np.linspace(0.0, arc, count))
    z = RADIUS * np.sin(ELEVATION)
    r = RADIUS * np.cos(ELEVATION)
    return [np.array([r * np.cos(a), r * np.sin(a), z]) for a in angles]


def render(eye: np.ndarray, quads: list, supersample: int = 2) -> np.ndarray:
    """Ray trace the quads from ``eye``: RGB uint8 [HEIGHT, WIDTH, 3]."""
    c2w = look_at(eye)
    w, h, f = WIDTH * supersample, HEIGHT * supersample, FOCAL * supersample
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    cam = np.stack([(cols - w / 2) / f, -(rows - h / 2) / f, -np.ones_like(cols)], -1)
    dirs = cam.reshape(-1, 3) @ c2w[:3, :3].T
    best = np.full(len(dirs), np.inf)
    colour = np.tile(np.array([0.55, 0.7, 0.9]), (len(dirs), 1))  # plain sky
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    for corner, a, b, tex in quads:
        normal = np.cross(a, b)
        normal /= np.linalg.norm(normal)
        denom = dirs @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((corner - eye) @ normal) / denom
        p = eye + t[:, None] * dirs - corner
        u, v = p @ a / (a @ a), p @ b / (b @ b)
        hit = (t > 1e-6) & (t < best) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
        if not hit.any():
            continue
        grid = torch.from_numpy(np.stack([u[hit], v[hit]], -1) * 2 - 1).float()[None, None]
        rgb = torch.nn.functional.grid_sample(tex, grid, align_corners=True)[0, :, 0].T.numpy()
        colour[hit] = rgb * (0.55 + 0.45 * abs(normal @ light))
        best[hit] = t[hit]
    image = torch.from_numpy(colour.reshape(1, h, w, 3)).permute(0, 3, 1, 2)
    image = torch.nn.functional.avg_pool2d(image, supersample)[0].permute(1, 2, 0).numpy()
    return (image.clip(0, 1) * 255).round().astype(np.uint8)


def run(args: list) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def quads() -> list:
    return scene_quads()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, quads: list) -> tuple[Path, list]:
    """A folder of PHOTOS rendered photos and their true camera centres."""
    folder = tmp_path_factory.mktemp("photos")
    eyes = ring(PHOTOS)
    for i, eye in enumerate(eyes):
        iio.imwrite(folder / f"view_{i:02d}.png", render(eye, quads))
    return folder, eyes


@pytest.fixture(scope="module")
def processed(photos: tuple[Path, list], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes") / "scene"
    assert run(["data", "process", photos[0], "--out", out]) == 0
    return out


def centres(root: Path) -> tuple[list[str], np.ndarray]:
    meta = json.loads((root / "transforms.json").read_text())
    names = [Path(f["file_path"]).name for f in meta["frames"]]
    return names, np.array([np.array(f["transform_matrix"])[:3, 3] for f in meta["frames"]])


def pair_gaps(root: Path) -> set[int]:
    """Index gaps of the image pairs COLMAP tried to match (ids follow the file names)."""
    with sqlite3.connect(root / "colmap" / "database.db") as db:
        rows = db.execute("SELECT pair_id FROM matches").fetchall()
    gaps = set()
    for (pair,) in rows:  # pair_id = id1 * 2^31 + id2 (COLMAP's database.h)
        gaps.add(abs(pair // 2147483647 - pair % 2147483647))
    return gaps


def test_photos_register_and_match_the_true_cameras(processed: Path, photos, capsys) -> None:
    folder, eyes = photos
    names, found = centres(processed)
    assert len(names) >= PHOTOS - 2
    truth = np.array([eyes[int(n[5:7])] for n in names])
    errors = align_error(found, truth)
    assert errors.max() < 0.03 * RING, errors / RING
    # OpenGL axes: after the alignment the cameras look at the scene (-Z towards it)
    meta = json.loads((processed / "transforms.json").read_text())
    scale, rot, _ = similarity(found, truth)
    for name, frame in zip(names, meta["frames"], strict=True):
        view = rot @ -np.array(frame["transform_matrix"])[:3, 2]
        eye = eyes[int(name[5:7])]
        towards = (TARGET - eye) / np.linalg.norm(TARGET - eye)
        assert view @ towards > 0.99
    assert meta["camera_model"] == "OPENCV" and meta["colmap_camera_model"] == "SIMPLE_RADIAL"
    assert meta["w"] == WIDTH and meta["h"] == HEIGHT
    assert meta["fl_x"] == meta["fl_y"] and abs(meta["fl_x"] / FOCAL - 1) < 0.05
    assert meta["k2"] == meta["p1"] == meta["p2"] == 0.0


def test_writes_images_downscales_points_and_model(processed: Path, photos) -> None:
    names, _ = centres(processed)
    assert sorted(p.name for p in (processed / "images").iterdir()) == sorted(names)
    for factor in (2, 4, 8):
        small = iio.imread(processed / f"images_{factor}" / names[0])
        assert small.shape[:2] == (HEIGHT // factor, WIDTH // factor)
    scene = load_nerfstudio(processed, downscale=4)
    assert scene.splits["train"].images.shape[1:3] == (HEIGHT // 4, WIDTH // 4)
    model = read_model(processed / "colmap" / "sparse" / "0")
    assert len(model.images) == len(names)
    assert [c.model for c in model.cameras.values()] == ["SIMPLE_RADIAL"]
    points, colours = read_points(processed / "sparse_pc.ply")
    assert len(points) > 200 and colours.dtype == np.uint8
    # the points lie on the scene (the ground and the box) once aligned with the cameras
    _, found = centres(processed)
    truth = np.array([photos[1][int(n[5:7])] for n in names])
    scale, rot, shift = similarity(found, truth)
    world = scale * points @ rot.T + shift
    assert np.median(np.abs(world[:, 2])) < 0.05 * RING  # most on the ground
    assert (np.abs(world[:, :2]) < 3.3).mean() > 0.95
    assert not list(processed.parent.glob(".scene.*"))


def test_points_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    points, colours = rng.normal(size=(50, 3)), rng.integers(0, 256, (50, 3), dtype=np.uint8)
    write_points(tmp_path / "p.ply", points, colours)
    back, back_colours = read_points(tmp_path / "p.ply")
    assert np.allclose(back, points, atol=1e-6) and (back_colours == colours).all()


def test_atlas_run_trains_on_the_processed_scene(processed: Path, tmp_path, quick_args) -> None:
    out = tmp_path / "run"
    assert run(["run", "--data", processed, "--out", out, *quick_args, "--max-steps", 3]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["protocol"]["data_kind"] == "nerfstudio"


def test_sequential_matcher_and_overwrite(photos, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seq"
    out.mkdir()
    (out / "old.txt").write_text("x")
    args = ["data", "process", photos[0], "--out", out, "--matcher", "sequential"]
    assert run(args) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert run([*args, "--overwrite"]) == 0
    assert not (out / "old.txt").exists()
    assert "registered" in capsys.readouterr().out
    assert max(pair_gaps(out)) <= 10  # sequential: each image with its next 10


def test_exhaustive_matcher_matches_far_pairs(processed: Path) -> None:
    assert pair_gaps(processed) == set(range(1, PHOTOS))  # every pair


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    with imageio.get_writer(path, fps=10, quality=9, macro_block_size=16) as video:
        for frame in frames:
            video.append_data(frame)


def test_video_frames_and_camera_model(quads, tmp_path: Path) -> None:
    clip, eyes = tmp_path / "clip.mp4", ring(40)
    rendered = np.stack([render(eye, quads) for eye in eyes]).astype(np.float32)
    write_video(clip, list(rendered.astype(np.uint8)))
    out = tmp_path / "scene"
    model_args = ["--frames", 16, "--camera-model", "SIMPLE_PINHOLE", "--threads", 1]
    assert run(["data", "process", clip, "--out", out, *model_args]) == 0
    names, found = centres(out)
    # on every core COLMAP's features and matches vary from run to run (of 12 runs of this
    # clip, one registered 10 of the 16 frames; two full-suite runs once gave 12 and 9);
    # on one thread, 18 runs registered all 16 with the same focal length. The pipeline
    # maps again below RETRY_BELOW (75%, 12 of 16 frames), so that is what the test asks
    assert len(names) >= RETRY_BELOW * 16 and all(n.startswith("frame_") for n in names)
    assert len(list((out / "images").iterdir())) == len(names) <= 16
    # each kept frame's video index: the rendered frame it looks like (after the codec)
    index = [
        int(np.abs(rendered - iio.imread(out / "images" / n)[None]).mean(axis=(1, 2, 3)).argmin())
        for n in names
    ]
    assert index == sorted(index) and index[-1] - index[0] >= 30  # spread over the video
    errors = align_error(found, np.array([eyes[i] for i in index]))
    assert errors.max() < 0.03 * RING, errors / RING
    meta = json.loads((out / "transforms.json").read_text())
    assert meta["colmap_camera_model"] == "SIMPLE_PINHOLE" and meta["k1"] == 0.0
    assert meta["fl_x"] == meta["fl_y"] and abs(meta["fl_x"] / FOCAL - 1) < 0.05
    model = read_model(out / "colmap" / "sparse" / "0")
    assert [c.model for c in model.cameras.values()] == ["SIMPLE_PINHOLE"]


def test_video_keeps_the_sharpest_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = noise_texture(rng, 128)[0].permute(1, 2, 0).numpy()
    frames = []
    for i in range(24):
        image = np.roll(base, 2 * i, axis=1)
        if i % 3 != 1:  # blur all but the middle frame of each run of 3
            image = (
                torch.nn.functional.avg_pool2d(
                    torch.from_numpy(image).permute(2, 0, 1)[None], 5, stride=1, padding=2
                )[0]
                .permute(1, 2, 0)
                .numpy()
            )
        frames.append((image * 255).round().astype(np.uint8))
    clip = tmp_path / "clip.mp4"
    write_video(clip, frames)
    kept = extract_frames(clip, 8, tmp_path / "frames")
    assert [index for _, index in kept] == [1, 4, 7, 10, 13, 16, 19, 22]
    assert [p.name for p, _ in kept][:2] == ["frame_00001.png", "frame_00002.png"]
    assert sharpness(frames[1]) > 2 * sharpness(frames[0])


def test_candidate_runs_cover_the_video() -> None:
    runs = candidate_runs(100, 10, per=3)
    assert len(runs) == 10 and all(len(r) == 3 for r in runs)
    assert runs[0][0] == 0 and runs[-1][-1] == 99
    assert candidate_runs(5, 10) == [[0], [1], [2], [3], [4]]


def noise_photos(folder: Path, count: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(count):
        image = noise_texture(rng, 128)[0].permute(1, 2, 0).numpy()
        iio.imwrite(folder / f"n{i}.png", (image * 255).astype(np.uint8))


@pytest.mark.parametrize(
    "case", ["empty", "unreadable", "empty-video", "bad-video", "frames", "threads"]
)
def test_bad_input_is_one_line_and_writes_nothing(case: str, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    extra: list = []
    if case == "empty":
        source.mkdir()
        expected = "no photos"
    elif case == "unreadable":
        noise_photos(source, 2)
        (source / "broken.jpg").write_bytes(b"not a jpeg")
        expected = "broken.jpg: not a readable image"
    elif case == "empty-video":
        source = tmp_path / "clip.mp4"
        source.write_bytes(b"")
        expected = "clip.mp4"
    elif case == "bad-video":
        source = tmp_path / "clip.mov"
        source.write_bytes(b"\x00" * 4096)
        expected = "clip.mov"
    elif case == "threads":
        noise_photos(source, 2)
        extra = ["--threads", 0]
        expected = "--threads must be >= 1, got 0"
    else:
        noise_photos(source, 2)
        extra = ["--frames", 5]
        expected = "--frames applies to a video"
    out = tmp_path / "scene"
    assert run(["data", "process", source, "--out", out, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".scene.*"))


def test_too_few_registered_is_an_error(tmp_path: Path, capsys) -> None:
    noise_photos(tmp_path / "in", 4)  # unrelated noise: nothing matches
    out = tmp_path / "new" / "folders" / "scene"
    assert run(["data", "process", tmp_path / "in", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "registered 0 of 4 images" in err[-1] and err[-1].startswith("atlas: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nor the folders above


def test_missing_pycolmap_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    noise_photos(tmp_path / "in", 3)
    monkeypatch.setitem(__import__("sys").modules, "pycolmap", None)
    assert run(["data", "process", tmp_path / "in", "--out", tmp_path / "scene"]) == 2
    assert "pip install 'nerf-atlas[sfm]'" in capsys.readouterr().err
    assert not (tmp_path / "scene").exists()


@pytest.mark.parametrize(
    ("matcher", "threads"), [("exhaustive", None), ("exhaustive", 1), ("sequential", 1)]
)
def test_threads_reach_every_colmap_stage_and_verification_is_seeded(
    photos, tmp_path: Path, monkeypatch, matcher: str, threads: int | None
) -> None:
    import pycolmap

    seen: dict[str, int] = {}
    matching = f"match_{matcher}"

    def recording(name: str, options: str, read):  # noqa: ANN001, ANN202
        real = getattr(pycolmap, name)

        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            seen[name] = read(kwargs[options])
            if name == matching:
                seen["ransac seed"] = kwargs["verification_options"].ransac.random_seed
            return real(*args, **kwargs)

        monkeypatch.setattr(pycolmap, name, call)

    recording("extract_features", "extraction_options", lambda o: o.num_threads)
    recording(matching, "matching_options", lambda o: o.num_threads)
    recording("incremental_mapping", "options", lambda o: o.num_threads)
    extra = ["--matcher", matcher] + ([] if threads is None else ["--threads", threads])
    assert run(["data", "process", photos[0], "--out", tmp_path / "scene", *extra]) == 0
    expected = -1 if threads is None else threads  # -1: COLMAP's every core
    assert seen == {
        "extract_features": expected,
        matching: expected,
        "ransac seed": 0,
        "incremental_mapping": expected,
    }


def test_mapping_again_with_a_relaxed_initial_pair(photos, tmp_path: Path, monkeypatch) -> None:
    from atlas_core.data.process import sfm

    angles, real = [], sfm.map_images

    def first_fails(*args, init_min_tri_angle=None, **kwargs):  # noqa: ANN001, ANN202
        angles.append(init_min_tri_angle)
        found = real(*args, init_min_tri_angle=init_min_tri_angle, **kwargs)
        return None if init_min_tri_angle is None else found

    monkeypatch.setattr(sfm, "map_images", first_fails)
    assert run(["data", "process", photos[0], "--out", tmp_path / "scene"]) == 0
    assert angles == [None, 4.0]
    assert len(centres(tmp_path / "scene")[0]) >= PHOTOS - 2


def test_poses_and_points_share_the_scene_world() -> None:
    from atlas_core.data.process.writer import APPLIED_TRANSFORM, camera_to_world

    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.linalg.det(q))
    w2c = np.concatenate([rotation, rng.normal(size=(3, 1))], axis=1)
    point = rng.normal(size=3)
    seen = w2c[:, :3] @ point + w2c[:, 3]  # OpenCV camera axes
    c2w = camera_to_world(w2c[None])[0]
    scene_point = APPLIED_TRANSFORM[:, :3] @ point
    local = np.linalg.inv(c2w) @ np.append(scene_point, 1.0)
    assert np.allclose(local[:3], seen * [1, -1, -1])  # OpenGL camera axes
    assert np.allclose(APPLIED_TRANSFORM[:, :3] @ [0, -1, 0], [0, 0, 1])  # COLMAP's up -> +Z


def test_debug_shows_colmaps_log(tmp_path: Path, capfd) -> None:
    noise_photos(tmp_path / "in", 3)
    assert run(["data", "process", tmp_path / "in", "--out", tmp_path / "a"]) == 2
    assert "feature_extraction" not in capfd.readouterr().err
    assert run(["--debug", "data", "process", tmp_path / "in", "--out", tmp_path / "b"]) == 2
    assert "feature_extraction" in capfd.readouterr().err
    assert run(["data", "process", tmp_path / "in", "--out", tmp_path / "c"]) == 2
    assert "feature_extraction" not in capfd.readouterr().err  # quiet again
