"""Real-capture data kinds (llff, colmap, nerfstudio) on tiny scenes written here from known
cameras; layout detection and contracts are in test_data_layout.py."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from atlas_core.data.colmap import load_colmap
from atlas_core.data.llff import load_llff
from atlas_core.data.nerfstudio import load_nerfstudio
from atlas_core.errors import DataError
from atlas_core.nerf.cameras import INTRINSICS, look_at, rotation_to_quaternion

W, H = 16, 12


def cameras(count: int, forward: bool = False) -> np.ndarray:
    """Known OpenGL camera-to-world matrices [N, 4, 4]: a ring around the origin (tilted up
    axis +Y), or a small forward-facing grid looking down -Z."""
    poses = []
    for i in range(count):
        if forward:
            eye = torch.tensor(
                [0.3 * (i % 3) - 0.3, 0.2 * (i // 3) - 0.2, 4.0], dtype=torch.float64
            )
            target = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
        else:
            a = 2 * math.pi * i / count
            eye = torch.tensor([3 * math.cos(a), 1.0 + 0.3 * (i % 2), 3 * math.sin(a)])
            eye = eye.double() + torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)
            target = torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)
        poses.append(look_at(eye, target, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)))
    return torch.stack(poses).numpy()


def write_images(
    folder: Path, names: list[str], width: int = W, height: int = H, value=None
) -> None:  # noqa: ANN001
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        fill = (i * 20) % 256 if value is None else value
        iio.imwrite(folder / name, np.full((height, width, 3), fill, dtype=np.uint8))


def project(c2w: np.ndarray, intr: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Pixel (col, row) of a world point in our convention (pixel centres at +0.5)."""
    cam = np.linalg.inv(c2w) @ np.append(point, 1.0)
    fx, fy, cx, cy = intr
    return np.array([fx * cam[0] / -cam[2] + cx, -fy * cam[1] / -cam[2] + cy])


def relative(c2w: np.ndarray) -> np.ndarray:
    """Rotations between consecutive cameras (unchanged by any similarity transform)."""
    rot = c2w[:, :3, :3]
    return np.einsum("nji,njk->nik", rot[:-1], rot[1:])


# -- LLFF ------------------------------------------------------------------------------


def write_llff(root: Path, count: int = 9, folder: str = "images", bounds=(2.0, 9.0)) -> np.ndarray:  # noqa: ANN001
    """An LLFF folder whose hwf says 32x24 images with focal 40; returns the OpenGL poses."""
    c2w = cameras(count, forward=True)
    rows = []
    for pose in c2w:
        llff = np.stack([-pose[:3, 1], pose[:3, 0], pose[:3, 2], pose[:3, 3]], axis=1)  # DRB
        hwf = np.array([[2 * H], [2 * W], [40.0]])
        rows.append(np.concatenate([np.concatenate([llff, hwf], 1).ravel(), bounds]))
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "poses_bounds.npy", np.array(rows))
    write_images(root / folder, [f"img{i:02d}.png" for i in range(count)])
    return c2w


def test_llff_poses_scale_near_far(tmp_path: Path) -> None:
    known = write_llff(tmp_path / "fern")
    scene = load_llff(tmp_path / "fern", test_every=0)
    views = scene.splits["train"]
    c2w = views.c2w.double().numpy()
    assert set(scene.splits) == {"train"} and scene.name == "fern"
    # hwf's focal 40 at 32 px wide -> 20 at our 16 px
    assert views.focal == pytest.approx(20.0) and INTRINSICS not in views.extras
    # same relative rotations; positions scaled by 1 / (0.75 * min bound), recentred
    assert np.allclose(relative(c2w), relative(known), atol=1e-5)
    scale = 1 / (0.75 * 2.0)
    gaps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    known_gaps = np.linalg.norm(np.diff(known[:, :3, 3], axis=0), axis=1)
    assert np.allclose(gaps, known_gaps * scale, atol=1e-5)
    assert np.allclose(c2w[:, :3, 3].mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(c2w[:, :3, :3].sum(axis=0)[:, 2] / 9, [0, 0, 1], atol=0.05)  # back ~ +Z
    assert scene.near == pytest.approx(0.9 * 2.0 * scale) and scene.far == pytest.approx(9 * scale)
    low = np.array(scene.bounds[:3])
    assert (low < c2w[:, :3, 3].min(0)).all() and low[2] < -scene.far * 0.99


def test_llff_test_every_and_images_n(tmp_path: Path) -> None:
    write_llff(tmp_path / "s")
    held = load_llff(tmp_path / "s").splits["test"]
    assert held.names == ["img00", "img08"]  # i % 8 == 0, as NeRF's llffhold
    assert load_llff(tmp_path / "s", test_every=3).splits["test"].names == [
        "img00",
        "img03",
        "img06",
    ]
    write_images(tmp_path / "s" / "images_2", [f"img{i:02d}.png" for i in range(9)], 5, 4, 77)
    half = load_llff(tmp_path / "s", downscale=2).splits["train"]
    assert half.images.shape[1:3] == (4, 5) and (half.images[..., 0] == 77).all()  # images_2 read
    assert half.focal == pytest.approx(40 * 5 / 32)
    quarter = load_llff(tmp_path / "s", downscale=4).splits["train"]  # images_2 halved again
    assert quarter.images.shape[1:3] == (2, 2) and (quarter.images[..., 0] == 77).all()


def test_llff_errors(tmp_path: Path) -> None:
    write_llff(tmp_path / "s")
    np.save(tmp_path / "s" / "poses_bounds.npy", np.zeros((9, 15)))
    with pytest.raises(DataError, match=r"poses_bounds.npy: expected shape \(N, 17\).*\(9, 15\)"):
        load_llff(tmp_path / "s")
    write_llff(tmp_path / "t", count=9)
    (tmp_path / "t" / "images" / "img03.png").unlink()
    with pytest.raises(DataError, match="8 images, but poses_bounds.npy has 9 poses"):
        load_llff(tmp_path / "t")
    write_llff(tmp_path / "u", folder="other")
    with pytest.raises(DataError, match="image folder is missing"):
        load_llff(tmp_path / "u")


# -- COLMAP ----------------------------------------------------------------------------

# two cameras: a PINHOLE one and a SIMPLE_PINHOLE one (both at the images' 16x12 size)
COLMAP_CAMERAS = {1: ("PINHOLE", [18.0, 20.0, 8.5, 5.5]), 2: ("SIMPLE_PINHOLE", [15.0, 7.0, 6.5])}
POINTS = np.array([[5.0, -2.0, 1.0], [5.3, -1.8, 0.8], [4.6, -2.2, 1.2], [5.1, -1.5, 1.3]])


def colmap_entries(count: int) -> tuple[np.ndarray, list[tuple]]:
    """Known OpenGL poses and COLMAP image entries (id, qvec, tvec, camera id, name)."""
    c2w = cameras(count)
    entries = []
    for i, pose in enumerate(c2w):
        w2c = np.linalg.inv(pose @ np.diag([1.0, -1.0, -1.0, 1.0]))  # OpenCV world-to-camera
        name = f"view{(i * 5) % count:02d}.png"  # listed out of name order
        entries.append((i + 1, rotation_to_quaternion(w2c[:3, :3]), w2c[:3, 3], 1 + i % 2, name))
    return c2w, entries


def write_colmap(
    root: Path, count: int = 8, binary: bool = False, model: str | None = None
) -> np.ndarray:
    c2w, entries = colmap_entries(count)
    sparse = root / "sparse" / "0"
    sparse.mkdir(parents=True)
    write_images(root / "images", [e[4] for e in entries])
    cams = dict(COLMAP_CAMERAS)
    if model is not None:
        cams[2] = (
            model,
            [15.0, 15.0, 7.0, 6.5] + [0.0] * 8 if model == "FULL_OPENCV" else cams[2][1],
        )
    if binary:
        ids = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "FULL_OPENCV": 6}
        data = struct.pack("<Q", len(cams))
        for cid, (name, params) in cams.items():
            data += struct.pack("<iiQQ", cid, ids.get(name, 99), W, H) + struct.pack(
                f"<{len(params)}d", *params
            )
        (sparse / "cameras.bin").write_bytes(data)
        data = struct.pack("<Q", len(entries))
        for iid, q, t, cid, name in entries:
            data += struct.pack("<i7di", iid, *q, *t, cid) + name.encode() + b"\0"
            data += struct.pack("<Q", len(POINTS)) + b"".join(
                struct.pack("<ddq", 1.0, 2.0, p) for p in range(len(POINTS))
            )
        (sparse / "images.bin").write_bytes(data)
        data = struct.pack("<Q", len(POINTS))
        for pid, xyz in enumerate(POINTS):
            data += struct.pack("<Q3d3BdQ", pid, *xyz, 1, 2, 3, 0.5, 1) + struct.pack("<ii", 1, 0)
        (sparse / "points3D.bin").write_bytes(data)
    else:
        lines = [
            "# Camera list",
            *(f"{cid} {n} {W} {H} {' '.join(map(str, p))}" for cid, (n, p) in cams.items()),
        ]
        (sparse / "cameras.txt").write_text("\n".join(lines) + "\n")
        lines = ["# Image list with two lines of data per image:"]
        for iid, q, t, cid, name in entries:
            pose = " ".join(map(repr, [*q.tolist(), *t.tolist()]))
            lines.append(f"{iid} {pose} {cid} {name}")
            lines.append(" ".join(f"1.0 2.0 {p}" for p in range(len(POINTS))) if iid % 2 else "")
        (sparse / "images.txt").write_text("\n".join(lines) + "\n")
        lines = [
            f"{pid} {x} {y} {z} 1 2 3 0.5 1 0" for pid, (x, y, z) in enumerate(POINTS.tolist())
        ]
        (sparse / "points3D.txt").write_text("# points\n" + "\n".join(lines) + "\n")
    return c2w


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_poses_intrinsics_and_range(tmp_path: Path, binary: bool) -> None:
    known = write_colmap(tmp_path / "room", binary=binary)
    scene = load_colmap(tmp_path / "room", test_every=0)
    views = scene.splits["train"]
    assert views.names == [f"view{i:02d}" for i in range(8)] and scene.name == "room"
    _, entries = colmap_entries(8)
    order = sorted(range(8), key=lambda i: entries[i][4])
    c2w, intr = views.c2w.double().numpy(), views.extras[INTRINSICS].double().numpy()
    for view, i in enumerate(order):  # per-view intrinsics of the view's camera
        name, p = COLMAP_CAMERAS[entries[i][3]]
        expected = p if name == "PINHOLE" else [p[0], p[0], p[1], p[2]]
        assert np.allclose(intr[view], expected)
    # nerfstudio's normalisation: centred, inside [-1, 1], mean up is +Z
    centres = c2w[:, :3, 3]
    assert np.allclose(centres.mean(0), 0, atol=1e-5) and np.abs(centres).max() == pytest.approx(
        1.0
    )
    up = c2w[:, :3, 1].mean(0)
    assert np.allclose(up / np.linalg.norm(up), [0, 0, 1], atol=1e-5)
    # a world point lands on the same pixel as COLMAP projects it (x = K (R X + t))
    moved = moved_point(known, c2w, order, POINTS[1])
    for view, i in enumerate(order):
        w2c = np.linalg.inv(known[i] @ np.diag([1.0, -1.0, -1.0, 1.0]))
        cam = w2c[:3, :3] @ POINTS[1] + w2c[:3, 3]
        fx, fy, cx, cy = intr[view]
        colmap_pixel = np.array([fx * cam[0] / cam[2] + cx, fy * cam[1] / cam[2] + cy])
        assert np.allclose(project(c2w[view], intr[view], moved), colmap_pixel, atol=1e-4)
    depths = [np.linalg.norm(POINTS - known[i, :3, 3], axis=1) for i in range(8)]
    true_scale = np.linalg.norm(centres[1] - centres[0]) / np.linalg.norm(
        known[order[1], :3, 3] - known[order[0], :3, 3]
    )
    assert 0 < scene.near <= min(d.min() for d in depths) * true_scale
    assert scene.far <= max(d.max() for d in depths) * true_scale + 1e-6 and scene.far > scene.near


def moved_point(
    known: np.ndarray, c2w: np.ndarray, order: list[int], point: np.ndarray
) -> np.ndarray:
    """A world point through the similarity that took the known cameras to ``c2w``."""
    src = known[order][:, :3, 3]
    dst = c2w[:, :3, 3]
    rot = c2w[0, :3, :3] @ known[order[0], :3, :3].T
    scale = np.linalg.norm(dst[1] - dst[0]) / np.linalg.norm(src[1] - src[0])
    return scale * rot @ (point - src[0]) + dst[0]


def test_colmap_text_and_binary_agree_and_test_every(tmp_path: Path) -> None:
    write_colmap(tmp_path / "t")
    write_colmap(tmp_path / "b", binary=True)
    text, binary = load_colmap(tmp_path / "t"), load_colmap(tmp_path / "b")
    assert torch.allclose(text.splits["train"].c2w, binary.splits["train"].c2w, atol=1e-5)
    assert text.splits["test"].names == ["view00"]  # 8 views: i % 8 == 0
    assert load_colmap(tmp_path / "t", test_every=4).splits["test"].names == ["view00", "view04"]
    write_images(tmp_path / "t" / "images_2", [f"view{i:02d}.png" for i in range(8)], 8, 6, 99)
    half = load_colmap(tmp_path / "t", downscale=2).splits["train"]
    assert half.images.shape[1:3] == (6, 8) and (half.images[..., 1] == 99).all()
    assert torch.allclose(half.extras[INTRINSICS], text.splits["train"].extras[INTRINSICS] / 2)


def test_colmap_errors(tmp_path: Path) -> None:
    write_colmap(tmp_path / "a", model="FULL_OPENCV")
    with pytest.raises(
        DataError, match="cameras.txt: camera 2 uses model FULL_OPENCV, which is not supported"
    ):
        load_colmap(tmp_path / "a")
    write_colmap(tmp_path / "b", model="FANCY")
    with pytest.raises(DataError, match="cameras.txt: camera 2: unknown camera model 'FANCY'"):
        load_colmap(tmp_path / "b")
    write_colmap(tmp_path / "c", binary=True, model="MYSTERY")
    with pytest.raises(DataError, match="cameras.bin: camera 2: unknown camera model id 99"):
        load_colmap(tmp_path / "c")
    write_colmap(tmp_path / "d", binary=True)
    data = (tmp_path / "d" / "sparse" / "0" / "images.bin").read_bytes()
    (tmp_path / "d" / "sparse" / "0" / "images.bin").write_bytes(data[:-5])
    with pytest.raises(DataError, match="images.bin: truncated"):
        load_colmap(tmp_path / "d")
    write_colmap(tmp_path / "e")
    (tmp_path / "e" / "images" / "view03.png").unlink()
    with pytest.raises(DataError, match="view03.png: image file is missing"):
        load_colmap(tmp_path / "e")


# -- nerfstudio ------------------------------------------------------------------------

DIST = {"k1": 0.3, "k2": 0.1, "p1": 0.01, "p2": -0.01}
NS_W, NS_H = 40, 30


def pattern(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A smooth test image, a function of ideal (undistorted) pixel coordinates."""
    return 128 + 60 * np.sin(u / 6.0) + 50 * np.cos(v / 5.0)


def distorted_image(intr: tuple, k: dict) -> np.ndarray:
    """What a lens with OPENCV coefficients ``k`` records of ``pattern``: each photo pixel's
    ideal point is found by fixed-point iterations of the inverse distortion."""
    fx, fy, cx, cy = intr
    v, u = np.meshgrid(np.arange(NS_H) + 0.5, np.arange(NS_W) + 0.5, indexing="ij")
    xd, yd = (u - cx) / fx, (v - cy) / fy
    x, y = xd.copy(), yd.copy()
    for _ in range(20):
        r2 = x * x + y * y
        radial = 1 + k["k1"] * r2 + k["k2"] * r2 * r2
        dx = 2 * k["p1"] * x * y + k["p2"] * (r2 + 2 * x * x)
        dy = k["p1"] * (r2 + 2 * y * y) + 2 * k["p2"] * x * y
        x, y = (xd - dx) / radial, (yd - dy) / radial
    value = pattern(fx * x + cx, fy * y + cy)
    return np.repeat(np.clip(value, 0, 255).round().astype(np.uint8)[..., None], 3, axis=2)


def write_nerfstudio(root: Path, count: int = 9, extra: dict | None = None) -> np.ndarray:
    """Shared OPENCV intrinsics, one frame with its own focal, one frame without an image."""
    c2w = cameras(count)
    intr = (36.0, 34.0, 19.0, 16.0)
    frames = []
    (root / "images").mkdir(parents=True)
    for i, pose in enumerate(c2w):
        frame = {"file_path": f"images/f{i:02d}.png", "transform_matrix": pose.tolist()}
        if i == 2:
            frame["fl_x"] = frame["fl_y"] = 30.0
        frames.append(frame)
        if i != 4:
            own = (30.0, 30.0, *intr[2:]) if i == 2 else intr
            iio.imwrite(root / frame["file_path"], distorted_image(own, DIST))
    meta = {"fl_x": intr[0], "fl_y": intr[1], "cx": intr[2], "cy": intr[3], "w": NS_W, "h": NS_H,
            "camera_model": "OPENCV", **DIST, "frames": frames, **(extra or {})}  # fmt: skip
    (root / "transforms.json").write_text(json.dumps(meta))
    return c2w


def test_nerfstudio_undistorts_skips_missing_and_normalises(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    known = write_nerfstudio(tmp_path / "ns")
    scene = load_nerfstudio(tmp_path / "ns", test_every=0)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "1 of 9 frames have no image file" in err
    views = scene.splits["train"]
    assert len(views) == 8 and "f04" not in views.names
    intr = views.extras[INTRINSICS].numpy()
    assert np.allclose(intr[0], [36, 34, 19, 16]) and np.allclose(intr[2], [30, 30, 19, 16])
    # undistorted images are the ideal pattern (away from the border, within bilinear error)
    v, u = np.meshgrid(np.arange(NS_H) + 0.5, np.arange(NS_W) + 0.5, indexing="ij")
    ideal = np.clip(pattern(u, v), 0, 255)
    got = views.images[0, ..., 0].numpy().astype(float)
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(got - ideal)[inner].mean() < 1.5
    raw = distorted_image((36.0, 34.0, 19.0, 16.0), DIST)[..., 0].astype(float)
    assert np.abs(raw - ideal)[inner].mean() > 3 * np.abs(got - ideal)[inner].mean()
    c2w = views.c2w.double().numpy()
    kept = [i for i in range(9) if i != 4]
    assert np.allclose(relative(c2w), relative(known[kept]), atol=1e-5)
    assert np.abs(c2w[:, :3, 3]).max() == pytest.approx(1.0)
    assert np.allclose(c2w[:, :3, 3].mean(0), 0, atol=1e-6)
    assert scene.bounds == (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0) and scene.near == 0.05
    corners = np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T
    far = max(np.linalg.norm(c - corner) for c in c2w[:, :3, 3] for corner in corners)
    assert scene.far == pytest.approx(far)


def test_nerfstudio_aabb_split_downscale(tmp_path: Path) -> None:
    # instant-ngp's box centred on the cameras' centre (5, -2, 1): offset in its (y, z, x) order
    ngp = {"aabb_scale": 2, "scale": 0.5, "offset": [0.5 + 2 * 0.5, 0.5 - 1 * 0.5, 0.5 - 5 * 0.5]}
    known = write_nerfstudio(tmp_path / "a", extra=ngp)
    plain = load_nerfstudio(tmp_path / "a", test_every=0)
    # half side 0.5 * aabb_scale / scale = 2 world units, times our scale, about (5, -2, 1)
    views = plain.splits["train"]
    kept = [i for i in range(9) if i != 4]
    ours = views.c2w[:, :3, 3].double().numpy()
    scale = np.linalg.norm(ours[1] - ours[0]) / np.linalg.norm(
        known[kept[1], :3, 3] - known[0, :3, 3]
    )
    low, high = np.array(plain.bounds[:3]), np.array(plain.bounds[3:])
    centre = moved_point(known, views.c2w.double().numpy(), kept, np.array([5.0, -2.0, 1.0]))
    assert (
        np.allclose((low + high) / 2, centre, atol=1e-5) and (high - low).min() >= 4 * scale - 1e-6
    )
    assert (high - low).max() <= 4 * scale * math.sqrt(3)
    held = load_nerfstudio(tmp_path / "a", test_every=3)
    assert held.splits["test"].names == [
        "f00",
        "f03",
        "f07",
    ]  # counted over frames with images (f04 has none)
    write_nerfstudio(tmp_path / "s", extra={"test_filenames": ["images/f01.png", "images/f05.png"]})
    own = load_nerfstudio(tmp_path / "s")
    assert own.splits["test"].names == ["f01", "f05"] and len(own.splits["train"]) == 6
    half = load_nerfstudio(tmp_path / "s", downscale=2).splits["train"]
    assert half.images.shape[1:3] == (15, 20)
    assert np.allclose(half.extras[INTRINSICS][0].numpy(), [18, 17, 9.5, 8])
    write_images(
        tmp_path / "s" / "images_2", [f"f{i:02d}.png" for i in range(9) if i != 4], 20, 15, 55
    )
    ready = load_nerfstudio(tmp_path / "s", downscale=2).splits["train"]
    assert (ready.images[..., 0] == 55).all()  # images_2/ read, not downsampled


def test_nerfstudio_errors(tmp_path: Path) -> None:
    write_nerfstudio(tmp_path / "a", extra={"camera_model": "OPENCV_FISHEYE"})
    with pytest.raises(
        DataError, match="transforms.json: frame 0: camera_model 'OPENCV_FISHEYE' is not supported"
    ):
        load_nerfstudio(tmp_path / "a")
    write_nerfstudio(tmp_path / "b", extra={"fl_x": "wide"})
    with pytest.raises(DataError, match="transforms.json: frame 0: fl_x must be a finite number"):
        load_nerfstudio(tmp_path / "b")
    write_nerfstudio(tmp_path / "c")
    for file in (tmp_path / "c" / "images").iterdir():
        file.unlink()
    with pytest.raises(DataError, match="none of its 9 frames has an image file"):
        load_nerfstudio(tmp_path / "c")


# -- detection, the command line, options ----------------------------------------------
