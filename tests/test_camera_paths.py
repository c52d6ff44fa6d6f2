"""Camera paths: through the training cameras, and nerfstudio's camera_path.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v2 as imageio
import pytest
import torch

from atlas_core.cli import main
from atlas_core.commands.camera_paths import (
    CameraPath,
    interpolate,
    read_camera_path,
    write_camera_path,
)
from atlas_core.errors import AtlasError
from atlas_core.nerf.cameras import look_at


def forward_facing(count: int = 5) -> torch.Tensor:
    """Cameras on a line, each turned a little more, all looking roughly down -Z."""
    poses = []
    for k in range(count):
        eye = torch.tensor([0.3 * k, 0.05 * k * k, 4.0], dtype=torch.float64)
        target = torch.tensor([0.1 * k, 0.0, 0.0], dtype=torch.float64)
        poses.append(look_at(eye, target, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)))
    return torch.stack(poses).float()


def video_shape(path: Path) -> tuple[int, int, int]:
    """Frames, height and width of a video."""
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        width, height = reader.get_meta_data()["size"]
        return reader.count_frames(), height, width
    finally:
        reader.close()


def test_interpolate_passes_through_every_camera() -> None:
    """Keyframes land on the cameras; rotations stay rotations; no frame jumps."""
    cameras = forward_facing(5)
    path = interpolate(cameras, 4 * 8 + 1)
    assert path.shape == (33, 4, 4)
    for k in range(5):
        assert torch.allclose(path[8 * k], cameras[k], atol=1e-5), k
    rotations = path[:, :3, :3].double()
    identity = torch.eye(3, dtype=torch.float64).expand_as(rotations)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), identity, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(33, dtype=torch.float64))
    steps = (path[1:, :3, 3] - path[:-1, :3, 3]).norm(dim=-1)
    assert float(steps.max()) < 3 * float(steps.mean())  # smooth: no jumps
    assert torch.allclose(interpolate(cameras[:1], 3), cameras[:1].expand(3, 4, 4))


def test_camera_path_file_round_trip(tmp_path: Path) -> None:
    """What we write, nerfstudio's format, reads back: poses, fov as focal, size, fps."""
    poses = forward_facing(3)
    written = CameraPath(poses, [50.0, 60.0, 70.0], 64, 48, 12.0)
    path = write_camera_path(tmp_path / "camera_path.json", written)
    raw = json.loads(path.read_text())
    assert raw["render_width"] == 64 and len(raw["camera_path"]) == 3
    assert len(raw["camera_path"][0]["camera_to_world"]) == 16
    fov = raw["camera_path"][0]["fov"]
    assert fov == pytest.approx(math.degrees(2 * math.atan(24 / 50)))
    back = read_camera_path(path)
    assert torch.allclose(back.poses, poses, atol=1e-6)
    assert back.focals == pytest.approx([50.0, 60.0, 70.0])
    assert (back.width, back.height, back.fps) == (64, 48, 12.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"render_width": 4}', "no 'camera_path' list"),
        ('{"camera_type": "fisheye", "camera_path": []}', "camera_type 'fisheye'"),
        ('{"render_width": 4, "render_height": 4, "camera_path": [{"fov": 50}]}', "bad camera"),
        ('{"render_width": 4, "render_height": 4, "camera_path": []}', "has no cameras"),
    ],
)
def test_bad_camera_path_files(tmp_path: Path, content: str, message: str) -> None:
    """A malformed file is one error naming the file and the problem."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AtlasError, match=message) as caught:
        read_camera_path(path)
    assert str(path) in str(caught.value)


def test_render_paths_from_the_cli(atlas_scene, tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    """``--path interpolate`` and ``--path FILE.json`` render; misuse exits 2."""
    out = tmp_path / "run"
    assert main(["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]) == 0
    assert main(["render", str(out), "--path", "interpolate", "--frames", "5"]) == 0
    assert video_shape(out / "interpolate.mp4")[0] == 5
    poses = forward_facing(3)
    poses[:, :3, 3] *= 0.8
    file = write_camera_path(
        tmp_path / "camera_path.json", CameraPath(poses, [40.0] * 3, 32, 24, 8)
    )
    assert main(["render", str(out), "--path", str(file)]) == 0
    assert video_shape(out / "camera_path.mp4") == (
        3,
        24,
        32,
    )  # the file's cameras and size, not the scene's
    capsys.readouterr()
    assert main(["render", str(out), "--path", str(file), "--frames", "4"]) == 2
    assert "--frames does not apply" in capsys.readouterr().err
    assert main(["render", str(out), "--path", "zigzag"]) == 2
    assert "--path zigzag: choose orbit" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("[]")
    assert main(["render", str(out), "--path", str(tmp_path / "broken.json")]) == 2
    assert "broken.json: no 'camera_path' list" in capsys.readouterr().err
