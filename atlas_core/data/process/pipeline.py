"""``atlas data process``: photos or a video into a scene the ``nerfstudio`` data kind reads.

Phases: frames (video) or photos, features, matching, mapping, writing; each prints one
line with its elapsed seconds on stderr. When COLMAP's mapper registers fewer than 3/4 of
the images, it maps again with a smaller initial triangulation angle and keeps the
better result. Everything is written into a hidden folder
beside ``out`` and renamed into place at the end, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from atlas_core.data.process import sfm, writer
from atlas_core.data.process.frames import extract_frames, is_video, list_photos
from atlas_core.errors import DataError

__all__ = ["DEFAULT_FRAMES", "EXHAUSTIVE_UP_TO", "MIN_REGISTERED", "Summary", "process"]

DEFAULT_FRAMES = 100
EXHAUSTIVE_UP_TO = 100  # photos; more are matched sequentially (by file name)
MIN_REGISTERED = 3
RETRY_BELOW = 0.75  # map again with a relaxed initial pair when fewer are registered
RELAXED_TRI_ANGLE = 4.0  # degrees; COLMAP's default 16 (8 on its own retry) fails on
# forward-facing captures such as LLFF's, whose baselines are short next to the depth


@dataclass
class Summary:
    """What a run of :func:`process` did."""

    out: Path
    total: int
    registered: list[str]
    unregistered: list[str]
    matcher: str
    camera: sfm.Camera
    points: int
    downscales: list[int]
    seconds: dict[str, float] = field(default_factory=dict)


def _say(text: str) -> None:
    print(f"atlas: {text}", file=sys.stderr, flush=True)


@contextmanager
def _phase(summary: dict[str, float], name: str, say: Callable[[str], None]) -> Iterator[list]:
    """Time a phase; the caller appends a note to the yielded list."""
    notes: list[str] = []
    start = time.perf_counter()
    yield notes
    seconds = time.perf_counter() - start
    summary[name] = seconds
    note = f": {notes[0]}" if notes else ""
    say(f"{name}{note} ({seconds:.1f} s)")


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_file() or (out.exists() and not out.is_dir()):
        raise DataError(f"{out}: is a file, not a folder for the scene")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: folder is not empty; pass --overwrite to replace it")


def _move_into_place(stage: Path, out: Path) -> None:
    """Rename ``stage`` to ``out``; an existing ``out`` is removed only once that worked."""
    if not out.exists():
        os.replace(stage, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.replace(out, old / "scene")
    try:
        os.replace(stage, out)
    except BaseException:
        os.replace(old / "scene", out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def process(
    source: str | Path,
    out: str | Path,
    frames: int | None = None,
    matcher: str | None = None,
    camera_model: str = "SIMPLE_RADIAL",
    overwrite: bool = False,
    say: Callable[[str], None] = _say,
    verbose: bool = False,
    threads: int | None = None,
) -> Summary:
    """Run structure from motion on a folder of photos or a video and write the scene;
    ``verbose`` shows COLMAP's own log; ``threads`` (None: every core) runs COLMAP's
    features, matching and mapping on that many threads (1: the same scene from the same
    input on every run)."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise DataError(f"{source}: input does not exist (a folder of photos or a video)")
    video = is_video(source)
    if frames is not None and not video:
        raise DataError(f"{source}: --frames applies to a video, not a folder of photos")
    frames = DEFAULT_FRAMES if frames is None else frames
    if frames < 1:
        raise DataError(f"--frames must be >= 1, got {frames}")
    if matcher is not None and matcher not in sfm.MATCHERS:
        raise DataError(f"--matcher must be one of {', '.join(sfm.MATCHERS)}, got '{matcher}'")
    if threads is not None and threads < 1:
        raise DataError(f"--threads must be >= 1, got {threads}")
    if camera_model not in sfm.CAMERA_MODELS:
        raise DataError(
            f"--camera-model must be one of {', '.join(sfm.CAMERA_MODELS)}, got '{camera_model}'"
        )
    _check_out(out, overwrite)
    sfm.import_pycolmap(quiet=not verbose)  # fail before any work when it is missing
    made = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.process-"))
    try:
        threads = -1 if threads is None else threads
        summary = _run(source, stage, video, frames, matcher, camera_model, threads, say)
        _move_into_place(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in made:  # deepest first: the folders made for --out, when still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    summary.out = out
    return summary


def _count(solution: sfm.Solution | None) -> int:
    return 0 if solution is None else len(solution.names)


def _map(
    database: Path, images: Path, scratch: Path, total: int, angle: float | None, threads: int
) -> sfm.Solution | None:
    """One incremental mapping attempt, its scratch output removed afterwards."""
    scratch.mkdir()
    try:
        with _bar(total, "mapping") as bar:
            return sfm.map_images(
                database,
                images,
                scratch,
                tick=lambda: bar.update(1),
                init_min_tri_angle=angle,
                threads=threads,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _bar(total: int, name: str) -> tqdm:
    return tqdm(total=total, desc=name, unit="img", leave=False, file=sys.stderr, disable=None)


def _run(
    source: Path,
    stage: Path,
    video: bool,
    frames: int,
    matcher: str | None,
    camera_model: str,
    threads: int,
    say: Callable[[str], None],
) -> Summary:
    seconds: dict[str, float] = {}
    images = stage / "images"
    images.mkdir()
    if video:
        with _phase(seconds, "frames", say) as note:
            bar = tqdm(desc="frames", unit="frame", leave=False, file=sys.stderr, disable=None)
            with bar:
                written = extract_frames(source, frames, images, tick=lambda n: bar.update(1))
            names = [path.name for path, _ in written]
            note.append(f"kept {len(names)} sharp frames of {source.name}")
    else:
        with _phase(seconds, "photos", say) as note:
            for file in list_photos(source):
                shutil.copy2(file, images / file.name)
            names = sorted(p.name for p in images.iterdir())
            note.append(f"{len(names)} photos in {source}")
    if matcher is None:
        matcher = "sequential" if video or len(names) > EXHAUSTIVE_UP_TO else "exhaustive"
    colmap = stage / "colmap"
    colmap.mkdir()
    database = colmap / "database.db"
    with _phase(seconds, "features", say) as note:
        sfm.extract(database, images, names, camera_model, threads)
        note.append(f"SIFT on {len(names)} images, camera model {camera_model}")
    with _phase(seconds, "matching", say) as note:
        sfm.match(database, matcher, threads)
        note.append(matcher)
    with _phase(seconds, "mapping", say) as note:
        solution = _map(database, images, stage / "mapper", len(names), None, threads)
        if _count(solution) < RETRY_BELOW * len(names):
            again = _map(database, images, stage / "mapper", len(names), RELAXED_TRI_ANGLE, threads)
            say(
                f"mapping: registered {_count(solution)} of {len(names)} images; again with "
                f"a {RELAXED_TRI_ANGLE:g} degree initial pair: {_count(again)}"
            )
            solution = again if _count(again) > _count(solution) else solution
        found = [] if solution is None else solution.names
        note.append(f"registered {len(found)} of {len(names)} images")
        if solution is not None and solution.models > 1:
            note[-1] += f" (the largest of {solution.models} separate models)"
    missing = [name for name in names if name not in set(found)]
    if solution is None or len(found) < MIN_REGISTERED:
        raise DataError(
            f"{source}: structure from motion registered {len(found)} of {len(names)} images "
            f"(at least {MIN_REGISTERED} needed); nothing written. Photos need overlap and "
            "texture; try more photos, or --matcher exhaustive"
        )
    with _phase(seconds, "writing", say) as note:
        for name in missing:
            (images / name).unlink()
        model = colmap / "sparse" / "0"
        model.mkdir(parents=True)
        solution.model.write_binary(str(model))
        files = [f"images/{name}" for name in solution.names]
        writer.write_json(stage / "transforms.json", writer.transforms(solution, files))
        points = writer.points_in_scene(solution)
        writer.write_points(stage / "sparse_pc.ply", points, solution.colours)
        kept = [images / name for name in solution.names]
        downscales = writer.write_downscaled(kept, stage)
        note.append(
            f"transforms.json, {len(points)} points, images_{{{','.join(map(str, downscales))}}}"
        )
    return Summary(
        stage,
        len(names),
        found,
        missing,
        matcher,
        solution.camera,
        len(points),
        downscales,
        seconds,
    )
