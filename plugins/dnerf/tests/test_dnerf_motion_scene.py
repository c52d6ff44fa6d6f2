"""The large-motion scene of ``atlas data synth --kind dnerf_motion``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from atlas_plugin_dnerf import load_dnerf
from atlas_plugin_dnerf.motion_scene import mover_centres, shapes_at, write_motion_scene

from atlas_core.api import synth
from atlas_core.testing import run_cli


def test_objects_travel_far_bounce_and_turn() -> None:
    start, end = mover_centres(0.0), mover_centres(1.0)
    travel = [math.dist(a, b) for a, b in zip(start, end, strict=True)]
    assert travel[0] > 1.3 and travel[1] > 1.2  # box and ball cross the floor
    heights = [mover_centres(t / 60)[1][2] for t in range(61)]
    triples = zip(heights, heights[1:], heights[2:], strict=False)
    lows = sum(1 for a, b, c in triples if b < a and b < c)
    assert lows >= 2  # the ball comes down between its bounces
    assert shapes_at(0.0)[-3].yaw != shapes_at(0.5)[-3].yaw  # the box turns


def test_the_images_change_where_objects_move() -> None:
    c2w = synth.camera_poses("test", 1)[0]
    dirs = synth.ray_directions(c2w, 32).reshape(-1, 3)
    first = synth.trace_rgba(c2w[:3, 3], dirs, shapes_at(0.0))
    last = synth.trace_rgba(c2w[:3, 3], dirs, shapes_at(1.0))
    changed = np.abs(first - last).max(axis=-1) > 0.05
    assert changed.mean() > 0.05


def test_written_in_dnerf_layout_with_one_time_per_frame(tmp_path: Path) -> None:
    out = write_motion_scene(tmp_path / "m", size=16, views={"train": 4, "test": 2})
    scene = load_dnerf(out)
    assert scene.split("train").times.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert scene.split("test").images.shape[1:3] == (16, 16)
    frames = json.loads((out / "transforms_train.json").read_text())["frames"]
    assert len({json.dumps(f["transform_matrix"]) for f in frames}) == 4  # a camera each


def test_refuses_a_non_empty_folder_and_leaves_it(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        write_motion_scene(tmp_path / "m", size=8, views={"train": 2})
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_atlas_data_synth_kind_dnerf_motion(tmp_path: Path) -> None:
    assert run_cli(["data", "synth", str(tmp_path / "s"), "--kind", "dnerf_motion",
                    "--size", "12"]) == 0  # fmt: skip
    assert load_dnerf(tmp_path / "s").split("train").times.numel() == 60
