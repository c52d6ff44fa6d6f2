"""The images ``atlas data process`` starts from: a folder of photos, or frames of a video.

Video frames are read with imageio-ffmpeg. ``count`` frames are kept, evenly spread over
the video: the video is cut into ``count`` equal runs of frames, a few candidates are
read evenly from each run, and the sharpest candidate of each run is kept, so that the
blurriest of near neighbours (motion blur of a hand-held capture) are skipped. Sharpness
is the variance of the image's Laplacian (Pech-Pacheco et al., "Diatom autofocusing in
brightfield microscopy: a comparative study", ICPR 2000).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from atlas_core.data.images import read_rgba
from atlas_core.errors import DataError

__all__ = [
    "CANDIDATES",
    "PHOTO_SUFFIXES",
    "VIDEO_SUFFIXES",
    "candidate_runs",
    "extract_frames",
    "is_video",
    "list_photos",
    "sharpness",
]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
CANDIDATES = 3  # frames read per kept frame; the sharpest of them is kept


def is_video(path: Path) -> bool:
    """True for a file with a video suffix."""
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def list_photos(folder: Path) -> list[Path]:
    """The photos of a folder, sorted by name; each must decode and all share one size."""
    if not folder.is_dir():
        raise DataError(
            f"{folder}: not a folder of photos or a video ({', '.join(VIDEO_SUFFIXES)})"
        )
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES),
        key=lambda p: p.name,
    )
    if not files:
        raise DataError(f"{folder}: no photos in the folder (looked for .jpg, .jpeg, .png)")
    size = None
    for file in files:
        height, width = read_rgba(file).shape[:2]  # names the file when it does not decode
        if size is None:
            size = (width, height)
        elif (width, height) != size:
            raise DataError(
                f"{file}: photo is {width}x{height}, the others {size[0]}x{size[1]}; "
                "one camera needs photos of one size"
            )
    return files


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (higher is sharper)."""
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var()) if lap.size else 0.0


def candidate_runs(total: int, count: int, per: int = CANDIDATES) -> list[list[int]]:
    """Frame indices to read: ``count`` runs of up to ``per`` evenly spaced candidates,
    the runs covering ``range(total)`` in equal parts (every frame when total <= count)."""
    if total <= count:
        return [[i] for i in range(total)]
    edges = np.linspace(0, total, count + 1)
    runs = []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        first, last = int(np.ceil(start)), int(np.ceil(stop)) - 1
        picks = np.linspace(first, last, min(per, last - first + 1)).round().astype(int)
        runs.append(sorted(set(picks.tolist())))
    return runs


def _frame_size(video: Path, ffmpeg: str) -> tuple[int, int]:
    """Width and height of the decoded (display-rotated) frames, from the first frame."""
    command = [ffmpeg, "-v", "error", "-i", str(video), "-frames:v", "1", "-f", "image2pipe"]
    done = subprocess.run(
        [*command, "-vcodec", "png", "-"], capture_output=True, check=False, timeout=120
    )
    if done.returncode != 0 or not done.stdout:
        raise DataError(f"{video}: video has no frames (or is not a readable video)")
    height, width = iio.imread(done.stdout, extension=".png").shape[:2]
    return width, height


def extract_frames(
    video: Path,
    count: int,
    out: Path,
    tick: Callable[[int], None] | None = None,
) -> list[tuple[Path, int]]:
    """Write ``count`` evenly spread sharp frames of ``video`` as ``out/frame_00001.png``...;
    returns each written file with the index of its frame in the video."""
    import imageio_ffmpeg

    if count < 1:
        raise DataError(f"--frames must be >= 1, got {count}")
    try:
        total, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    except (RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"{video}: not a readable video ({str(exc).splitlines()[0]})") from exc
    if total < 1:
        raise DataError(f"{video}: video has no frames")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    width, height = _frame_size(video, ffmpeg)
    runs = candidate_runs(total, count)
    run_of = {index: r for r, picks in enumerate(runs) for index in picks}
    best: dict[int, tuple[float, int, np.ndarray]] = {}
    reader = imageio_ffmpeg.read_frames(str(video))
    try:
        next(reader)  # metadata
        for index, raw in enumerate(reader):
            if index in run_of:
                frame = np.frombuffer(raw, np.uint8)
                if frame.size != width * height * 3:
                    raise DataError(f"{video}: frame {index} has an unexpected size")
                frame = frame.reshape(height, width, 3)
                score = sharpness(frame)
                r = run_of[index]
                if r not in best or score > best[r][0]:
                    best[r] = (score, index, frame.copy())
            if tick is not None:
                tick(index + 1)
            if index >= max(run_of):
                break
    except (RuntimeError, OSError) as exc:
        raise DataError(f"{video}: could not decode ({str(exc).splitlines()[0]})") from exc
    finally:
        reader.close()
    if not best:
        raise DataError(f"{video}: video has no frames")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, r in enumerate(sorted(best), start=1):
        _, index, frame = best[r]
        file = out / f"frame_{number:05d}.png"
        iio.imwrite(file, frame)
        written.append((file, index))
    return written
