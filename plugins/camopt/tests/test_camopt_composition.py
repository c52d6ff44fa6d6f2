"""appearance, camopt and another plugin's field together: they build and train."""

from __future__ import annotations

import json

import pytest

from atlas_core.testing import requires_plugins, run_cli


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("voxel", marks=requires_plugins("appearance", "voxel")),
        pytest.param("ngp", marks=requires_plugins("appearance", "ngp")),
        pytest.param("mip", marks=requires_plugins("appearance", "mip")),
        pytest.param("volsdf", marks=requires_plugins("appearance", "volsdf")),
    ],
)
def test_appearance_camopt_and_another_field_train(atlas_scene, tmp_path, other) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins",
            f"appearance,camopt,{other}", "--max-steps", "4", "--eval-views", "1",
            "--set", "train.batch_rays=256", "--set", "eval.video_frames=0"]  # fmt: skip
    assert run_cli(args) == 0
    frames = json.loads((out / "camera_poses.json").read_text())["frames"]
    assert any(f["given"] != f["refined"] for f in frames)  # gradients reach the poses
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4
