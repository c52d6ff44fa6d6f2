"""A reader of COLMAP sparse models (``cameras``, ``images``, ``points3D``; ``.bin`` or
``.txt``), written from COLMAP's documented formats
(colmap.github.io/format.html, "Binary File Format" and "Text Format").

Binary layout (little-endian): cameras.bin = uint64 count, then per camera int32 id,
int32 model id, uint64 width, uint64 height, float64 params[model's count]; images.bin =
uint64 count, then per image int32 id, float64 qw qx qy qz tx ty tz, int32 camera id, a
NUL-terminated name, uint64 point count, then per point float64 x, y and int64 point3D
id; points3D.bin = uint64 count, then per point uint64 id, float64 xyz, uint8 rgb,
float64 error, uint64 track length, then per track entry int32 image id, int32 point2D
index. A pose maps world to camera (OpenCV axes): ``x_cam = R(q) x_world + t``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atlas_core.errors import DataError

__all__ = [
    "CAMERA_MODELS",
    "Camera",
    "Image",
    "Model",
    "find_model",
    "read_model",
]

# model id -> (name, parameter count), COLMAP's src/colmap/sensor/models.h
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: (mid, count) for mid, (name, count) in CAMERA_MODELS.items()}


@dataclass
class Camera:
    """One COLMAP camera: model name, image size and parameters as COLMAP stores them."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass
class Image:
    """One registered image: world-to-camera rotation (quaternion) and translation."""

    id: int
    qvec: np.ndarray  # qw, qx, qy, qz
    tvec: np.ndarray
    camera_id: int
    name: str
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class Model:
    """A sparse model: cameras and images by id, points [P, 3] (possibly empty)."""

    cameras: dict[int, Camera]
    images: dict[int, Image]
    points: np.ndarray
    point_ids: np.ndarray


def find_model(root: Path) -> Path | None:
    """``sparse/0`` or ``sparse`` when it holds ``cameras.bin`` or ``cameras.txt``."""
    for folder in (root / "sparse" / "0", root / "sparse"):
        if (folder / "cameras.bin").is_file() or (folder / "cameras.txt").is_file():
            return folder
    return None


class _Reader:
    """Little-endian reads from a bytes buffer; running past the end is a DataError."""

    def __init__(self, path: Path):
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise DataError(f"{self.path}: truncated at byte {self.pos} (file too short)")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def name(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DataError(f"{self.path}: truncated image name at byte {self.pos}")
        raw, self.pos = self.data[self.pos : end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: image name at byte {self.pos} is not UTF-8") from exc

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DataError(f"{self.path}: {len(self.data) - self.pos} unexpected bytes at the end")


def _model_name(path: Path, camera_id: int, model: int | str) -> tuple[str, int]:
    if isinstance(model, int):
        if model not in CAMERA_MODELS:
            raise DataError(f"{path}: camera {camera_id}: unknown camera model id {model}")
        return CAMERA_MODELS[model]
    if model not in MODEL_IDS:
        raise DataError(f"{path}: camera {camera_id}: unknown camera model {model!r}")
    return model, MODEL_IDS[model][1]


def _cameras_bin(path: Path) -> dict[int, Camera]:
    reader, cameras = _Reader(path), {}
    (count,) = reader.take("Q")
    for _ in range(count):
        cid, mid, width, height = reader.take("iiQQ")
        name, nparams = _model_name(path, cid, mid)
        params = np.array(reader.take("d" * nparams))
        cameras[cid] = Camera(cid, name, int(width), int(height), params)
    reader.done()
    return cameras


def _images_bin(path: Path) -> dict[int, Image]:
    reader, images = _Reader(path), {}
    (count,) = reader.take("Q")
    for _ in range(count):
        iid, *pose, cid = reader.take("idddddddi")
        name = reader.name()
        (npoints,) = reader.take("Q")
        points = np.array(reader.take("ddq" * npoints), dtype=np.float64).reshape(-1, 3)
        ids = points[:, 2].astype(np.int64) if npoints else np.zeros(0, np.int64)
        images[iid] = Image(iid, np.array(pose[:4]), np.array(pose[4:]), cid, name, ids)
    reader.done()
    return images


def _points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    reader = _Reader(path)
    (count,) = reader.take("Q")
    xyz, ids = np.zeros((count, 3)), np.zeros(count, np.int64)
    for i in range(count):
        pid, x, y, z, _r, _g, _b, _err, length = reader.take("QdddBBBdQ")
        reader.take("ii" * length)
        xyz[i], ids[i] = (x, y, z), pid
    reader.done()
    return xyz, ids


def _text_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    return [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]


def _numbers(path: Path, line_no: int, fields: list[str], kind: type) -> list:
    try:
        return [kind(v) for v in fields]
    except ValueError as exc:
        raise DataError(f"{path}: line {line_no}: malformed number ({exc})") from exc


def _cameras_txt(path: Path) -> dict[int, Camera]:
    cameras = {}
    for no, line in enumerate(_text_lines(path), 1):
        if not line:
            continue
        parts = line.split()
        if len(parts) < 4:
            raise DataError(f"{path}: camera line {no}: expected ID MODEL WIDTH HEIGHT PARAMS")
        (cid, width, height) = _numbers(path, no, [parts[0], *parts[2:4]], int)
        name, nparams = _model_name(path, cid, parts[1])
        params = _numbers(path, no, parts[4:], float)
        if len(params) != nparams:
            raise DataError(
                f"{path}: camera {cid}: model {name} takes {nparams} parameters, got {len(params)}"
            )
        cameras[cid] = Camera(cid, name, width, height, np.array(params))
    return cameras


def _images_txt(path: Path) -> dict[int, Image]:
    lines = _text_lines(path)
    while lines and not lines[-1] and len(lines) % 2:  # a trailing blank line
        lines.pop()
    if len(lines) % 2:
        lines.append("")  # the last image's (empty) point line
    images = {}
    for no in range(0, len(lines), 2):
        parts = lines[no].split(maxsplit=9)
        if len(parts) != 10:
            raise DataError(
                f"{path}: image entry {no // 2}: expected IMAGE_ID QW QX QY QZ TX TY TZ "
                "CAMERA_ID NAME, then a line of points"
            )
        iid, cid = _numbers(path, no, [parts[0], parts[8]], int)
        pose = np.array(_numbers(path, no, parts[1:8], float))
        points = lines[no + 1].split()
        if len(points) % 3:
            raise DataError(f"{path}: image {iid}: the points line needs X Y POINT3D_ID triples")
        ids = np.array(_numbers(path, no, points[2::3], int), dtype=np.int64)
        images[iid] = Image(iid, pose[:4], pose[4:], cid, parts[9], ids)
    return images


def _points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xyz, ids = [], []
    for no, line in enumerate(_text_lines(path), 1):
        if not line:
            continue
        parts = line.split()
        if len(parts) < 8:
            raise DataError(f"{path}: point line {no}: expected ID X Y Z R G B ERROR TRACK")
        ids.append(_numbers(path, no, parts[:1], int)[0])
        xyz.append(_numbers(path, no, parts[1:4], float))
    return np.array(xyz, dtype=np.float64).reshape(-1, 3), np.array(ids, dtype=np.int64)


def read_model(folder: Path) -> Model:
    """Read a model folder (binary files when present, else text); points3D is optional."""
    ext = ".bin" if (folder / "cameras.bin").is_file() else ".txt"
    binary = ext == ".bin"
    for name in ("cameras", "images"):
        if not (folder / f"{name}{ext}").is_file():
            raise DataError(f"{folder / (name + ext)}: file is missing")
    cameras = (_cameras_bin if binary else _cameras_txt)(folder / f"cameras{ext}")
    images = (_images_bin if binary else _images_txt)(folder / f"images{ext}")
    points_file = folder / f"points3D{ext}"
    if points_file.is_file():
        points, ids = (_points_bin if binary else _points_txt)(points_file)
    else:
        points, ids = np.zeros((0, 3)), np.zeros(0, np.int64)
    for image in images.values():
        if image.camera_id not in cameras:
            raise DataError(
                f"{folder / ('images' + ext)}: image {image.name!r} uses camera "
                f"{image.camera_id}, which cameras{ext} does not list"
            )
        if not np.isfinite(image.qvec).all() or np.linalg.norm(image.qvec) < 1e-9:
            raise DataError(f"{folder / ('images' + ext)}: image {image.name!r}: bad rotation")
    return Model(cameras, images, points, ids)
