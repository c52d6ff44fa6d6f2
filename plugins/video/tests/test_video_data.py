"""The video data kind: frames, times, camera, options, bad input, and a dnerf run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from atlas_plugin_video import load_video
from atlas_plugin_video.synth import render_frame, write_video

from atlas_core.api import DataError
from atlas_core.testing import DatasetContract, requires_plugins, run_cli

FRAMES, SIZE = 12, 32


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 32x32 mp4 of the generated moving scene."""
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=FRAMES, size=SIZE)


def test_frames_times_and_split(clip: Path) -> None:
    scene = load_video(clip, holdout=4)
    train, test = scene.splits["train"], scene.splits["test"]
    assert len(train) + len(test) == FRAMES and len(test) == 3  # positions 2, 6, 10
    assert test.names == ["frame_00002", "frame_00006", "frame_00010"]
    assert torch.allclose(test.times, torch.tensor([2, 6, 10]) / (FRAMES - 1))
    assert float(train.times[0]) == 0.0 and float(train.times[-1]) == 1.0
    assert train.images.shape == (FRAMES - 3, SIZE, SIZE, 4)
    assert bool((train.images[..., 3] == 255).all())  # video frames are opaque
    # the decoded frame is the rendered one up to compression
    error = (train.images[0, ..., :3].float() - torch.from_numpy(render_frame(0.0, SIZE))).abs()
    assert float(error.mean()) < 8.0


def test_default_camera_and_focal(clip: Path) -> None:
    views = load_video(clip, fov=60.0).splits["train"]
    expected = torch.eye(4)
    expected[2, 3] = 4.0
    assert torch.equal(views.c2w[0], expected) and torch.equal(views.c2w[-1], expected)
    assert math.isclose(views.focal, 0.5 * SIZE / math.tan(math.radians(30)), rel_tol=1e-6)


def test_given_camera_focal_and_distance(clip: Path) -> None:
    pose = [0.0, 0.0, 1.0, 5.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.5]  # 3x4, looks along -X
    views = load_video(clip, camera=pose, focal=40.0, downscale=2).splits["train"]
    assert torch.allclose(views.c2w[0, :3], torch.tensor(pose).view(3, 4))
    assert views.focal == 20.0 and views.width == SIZE // 2
    moved = load_video(clip, distance=2.5).splits["train"]
    assert float(moved.c2w[0, 2, 3]) == 2.5


def test_ray_range_and_box(clip: Path) -> None:
    scene = load_video(clip, near=1.0, far=3.0, bound=0.8)
    assert (scene.near, scene.far, scene.bounds) == (1.0, 3.0, (-0.8,) * 3 + (0.8,) * 3)
    assert scene.name == "clip"


def test_stride_limit_and_no_holdout(clip: Path) -> None:
    scene = load_video(clip, stride=3, limit=3, holdout=0)
    assert list(scene.splits) == ["train"]
    views = scene.splits["train"]
    assert views.names == ["frame_00000", "frame_00003", "frame_00006"]
    assert torch.allclose(views.times, torch.tensor([0.0, 0.5, 1.0]))
    assert scene.split("test") is views  # the core falls back to train


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stride": 0}, "data.stride must be >= 1"),
        ({"limit": -1}, "data.limit must be >= 0"),
        ({"holdout": 1}, "data.holdout must be 0"),
        ({"downscale": 0}, "data.downscale must be >= 1"),
        ({"downscale": 64}, "downscale 64 is larger"),
        ({"camera": [1.0, 2.0]}, "data.camera needs 12 or 16 numbers"),
        ({"camera": [0.0] * 12}, "data.camera is degenerate"),
        ({"camera": [1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]}, "last row"),
        ({"fov": 180.0}, "data.fov must be in (0, 180)"),
        ({"focal": -1.0}, "data.focal must be > 0"),
        ({"distance": 0.0}, "data.distance must be > 0"),
        ({"near": 3.0, "far": 2.0}, "need 0 < near < far"),
        ({"bound": 0.0}, "bound must be > 0"),
    ],
)
def test_bad_options(clip: Path, options: dict, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_video(clip, **options)
    assert str(info.value).startswith(str(clip))


def write_empty_video(path: Path) -> Path:
    """An mp4 container into which no frame was ever written."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (16, 16), macro_block_size=1)
    writer.send(None)
    writer.close()
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "video file does not exist"),
        (lambda d: d, "is a folder, not a video file"),
        (lambda d: (d / "notes.mp4").write_text("hello") and d / "notes.mp4", "not a readable"),
        (lambda d: write_empty_video(d / "empty.mp4"), "a video without frames"),
    ],
    ids=["missing", "folder", "not-a-video", "zero-frames"],
)
def test_bad_files_exit_2_naming_the_file(make, message, tmp_path, capsys) -> None:  # noqa: ANN001
    path = make(tmp_path)
    args = ["run", "--data", str(path), "--data-kind", "video", "--plugins", "video",
            "--out", str(tmp_path / "run"), "--max-steps", "1"]  # fmt: skip
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: " in err[0] and message in err[0], err
    assert not (tmp_path / "run").exists()


@requires_plugins("dnerf")
def test_dnerf_trains_on_the_video(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--data", str(clip), "--data-kind", "video", "--plugins", "dnerf,video",
            "--out", str(out), "--max-steps", "20", "--eval-views", "1",
            "--set", "data.holdout=4", "--set", "train.batch_rays=128",
            "--set", "sampler.samples=12", "--set", "field.width=16",
            "--set", "eval.video_frames=0", "--set", "dnerf.maps=0"]  # fmt: skip
    assert run_cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["skipped_steps"] == 0
    assert math.isfinite(metrics["test"]["psnr"]) and metrics["test"]["views"] == 1
    assert metrics["protocol"]["data_kind"] == "video" and "dnerf" in metrics["plugins"]


class TestVideoDatasetContract(DatasetContract):
    name = "video"
    plugins = ("video",)
    options = {"holdout": 3, "stride": 2}

    @pytest.fixture
    def contract_data(self, clip: Path) -> Path:
        """The generated clip."""
        return clip


def test_atlas_data_synth_writes_a_clip_and_refuses_a_seed(tmp_path, capsys) -> None:  # noqa: ANN001
    from atlas_core.testing import run_cli

    assert run_cli(["data", "synth", str(tmp_path / "v"), "--kind", "video", "--size", "16"]) == 0
    assert (tmp_path / "v" / "clip.mp4").stat().st_size > 0
    assert run_cli(["data", "synth", str(tmp_path / "w"), "--kind", "video", "--seed", "3"]) == 2
    assert "--seed must be 0" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
