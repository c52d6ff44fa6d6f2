"""The mpi plugin through the core: slots, options, contracts and a short training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from atlas_plugin_mpi import MPIField, PlaneSampler
from atlas_plugin_mpi.geometry import mean_pose
from helpers import SIZE, build, facing_scene

from atlas_core.api import RunConfig, SceneData
from atlas_core.testing import (
    FieldContract,
    SamplerContract,
    Trainer,
    configured,
    load_plugins,
    run_cli,
)

QUICK = ["--eval-views", "2", "--set", "eval.video_frames=0", "--set", "train.batch_rays=512",
         "--set", "field.planes=16", "--set", "field.plane_width=32"]  # fmt: skip


def test_claims_field_and_sampler_unless_chosen() -> None:
    config = configured(["mpi"])
    assert (config.field.name, config.sampler.name) == ("mpi", "mpi")
    config = configured(["mpi"], {"field": "tiny"})
    assert (config.field.name, config.sampler.name) == ("tiny", "stratified")
    config = configured(["mpi"], {"sampler": "stratified"})
    assert (config.field.name, config.sampler.name) == ("mpi", "stratified")
    config = configured(["mpi"], {"sampler.samples": 8})  # another sampler's options: left alone
    assert (config.field.name, config.sampler.name) == ("mpi", "stratified")


def test_reference_camera_options() -> None:
    scene = facing_scene(offsets=(-0.5, 0.1, 0.7))
    _, first, _ = build(scene, reference="first")
    _, mean, _ = build(scene, reference="mean")
    assert torch.allclose(first.geometry.c2w, scene.splits["train"].c2w[0])
    assert torch.allclose(mean.geometry.c2w[:3, 3], torch.tensor([0.1, 0.0, 4.0]), atol=1e-6)
    assert torch.allclose(mean.geometry.c2w[:3, :3], torch.eye(3), atol=1e-6)


def test_mean_pose_of_cameras_all_round_is_a_rotation() -> None:
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[1, :3, :3] = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # facing each other
    poses[1, :3, 2] = torch.tensor([0.0, 0.0, 1.0])  # mean view axis along the mean up
    poses[:, :3, 1] = torch.tensor([0.0, 0.0, 1.0])
    rotation = mean_pose(poses)[:3, :3]
    assert torch.allclose(rotation.t() @ rotation, torch.eye(3), atol=1e-6)


def test_plane_size_margin_and_depth_options() -> None:
    scene = facing_scene()
    _, field, _ = build(scene, planes=3, plane_width=10, plane_height=6, near=1.5, far=9.0)
    assert field.planes.shape == (1, 4, 3, 6, 10)
    assert torch.allclose(field.geometry.depths[[0, -1]], torch.tensor([1.5, 9.0]))
    _, square, _ = build(scene, plane_width=12)
    assert square.planes.shape[-2:] == (12, 12)  # height from the reference image's aspect
    # the default far plane is pulled in so that the reference camera's corners reach it
    assert float(square.geometry.depths[-1]) < scene.far
    # margin: a point at the image's right edge sits at u = 1 / margin
    edge = torch.tensor([[0.5 * SIZE / 16.0 * 3.0, 0.0, 1.0]])  # 3 below the camera
    for margin in (1.0, 2.0):
        _, wide, _ = build(scene, margin=margin)
        uv, _, depth = wide.geometry.project(edge)
        assert math.isclose(float(uv[0, 0]), 1.0 / margin, rel_tol=1e-5)
        assert math.isclose(float(depth[0]), 3.0, rel_tol=1e-6)


def test_between_planes_nearest_or_linear() -> None:
    scene = facing_scene()
    looks = {}
    for between in ("nearest", "linear"):
        _, field, _ = build(scene, planes=2, plane_width=4, near=2.0, far=6.0, between=between)
        with torch.no_grad():
            field.planes[0, :3, 0], field.planes[0, :3, 1] = -2.0, 2.0
        # disparity 0.3 is 0.6 of the way from the first plane (1/2) to the second (1/6)
        point = torch.tensor([[0.0, 0.0, 4.0 - 1.0 / 0.3]])
        looks[between] = field.rgba(point)[0][0, 0].item()
    assert math.isclose(looks["nearest"], torch.sigmoid(torch.tensor(2.0)).item(), rel_tol=1e-5)
    mixed = torch.sigmoid(torch.tensor(0.4 * -2.0 + 0.6 * 2.0)).item()  # logits mixed
    assert math.isclose(looks["linear"], mixed, rel_tol=1e-5)


def test_lr_scale_sets_the_planes_learning_rate(facing_scene: Path, tmp_path: Path) -> None:
    config = RunConfig()
    config.data.path = str(facing_scene)
    config.plugins = ["mpi"]
    config.set("field.lr_scale", 7.0)
    config.set("field.planes", 4)
    trainer = Trainer(config, load_plugins(["mpi"]), tmp_path / "run")
    groups = {group["lr_scale"]: group for group in trainer.optimizer.param_groups}
    assert groups[7.0]["params"][0] is trainer.pipeline.field.planes
    assert math.isclose(groups[7.0]["lr"], 7.0 * config.train.lr)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("field.planes=1", "planes must be >= 2"),
        ("field.plane_width=0", "plane_width must be >= 1"),
        ("field.margin=0.0", "margin and lr_scale must be > 0"),
        ("field.near=7.0", "need 0 < near < far for the planes"),
        ("field.reference=middle", "value 'middle' for field.reference"),
        ("field.between=cubic", "value 'cubic' for field.between"),
    ],
)
def test_bad_options_exit_2(facing_scene: Path, tmp_path: Path, capsys, setting, message) -> None:  # noqa: ANN001
    args = ["run", "--data", str(facing_scene), "--plugins", "mpi", "--out", str(tmp_path / "r"),
            "--max-steps", "1", "--set", setting]  # fmt: skip
    assert run_cli(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_plane_sampler_needs_the_mpi_field(facing_scene: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = ["run", "--data", str(facing_scene), "--plugins", "mpi", "--out", str(tmp_path / "r"),
            "--max-steps", "1", "--set", "field=tiny", "--set", "sampler=mpi"]  # fmt: skip
    assert run_cli(args) == 2
    assert "sampler 'mpi': needs the mpi field" in capsys.readouterr().err


def psnr_after(scene: Path, out: Path, steps: int, *extra: str) -> float:
    """Test PSNR of a run of ``steps`` steps with the mpi plugin."""
    args = ["run", "--data", str(scene), "--plugins", "mpi", "--out", str(out),
            "--max-steps", str(steps), *QUICK, *extra]  # fmt: skip
    assert run_cli(args) == 0
    return json.loads((out / "metrics.json").read_text())["test"]["psnr"]


def test_training_beats_the_untrained_planes(facing_scene: Path, tmp_path: Path) -> None:
    untrained = psnr_after(facing_scene, tmp_path / "untrained", 1)
    trained = psnr_after(facing_scene, tmp_path / "trained", 100)
    # measured: 12.3 dB untrained, 26.2 dB after 100 steps (about a second)
    assert trained > untrained + 8.0, (untrained, trained)


def test_stratified_sampling_of_the_planes_also_learns(facing_scene: Path, tmp_path: Path) -> None:
    extra = ["--set", "sampler=stratified", "--set", "sampler.samples=32"]
    trained = psnr_after(
        facing_scene, tmp_path / "run", 100, *extra, "--set", "field.between=nearest"
    )
    assert trained > 20.0


def contract_scene() -> SceneData:
    """Two forward-facing cameras (the MPI's kind of capture) for the contract tests."""
    return facing_scene(offsets=(-0.2, 0.2), box=1.5)


class TestMPIFieldContract(FieldContract):
    name = "mpi"
    plugins = ("mpi",)
    options = {"planes": 6, "plane_width": 8}

    def make_scene(self) -> SceneData:
        """Forward-facing cameras."""
        return contract_scene()


class TestMPIFieldStratifiedContract(FieldContract):
    name = "mpi"
    plugins = ("mpi",)
    options = {"planes": 6, "plane_width": 8, "between": "nearest", "reference": "first"}
    settings = {"sampler": "stratified", "sampler.samples": 8}

    def make_scene(self) -> SceneData:
        """Forward-facing cameras."""
        return contract_scene()


class TestPlaneSamplerContract(SamplerContract):
    name = "mpi"
    plugins = ("mpi",)
    settings = {"field.planes": 6, "field.plane_width": 8}

    def make_scene(self) -> SceneData:
        """Forward-facing cameras."""
        return contract_scene()


def test_exports() -> None:
    assert issubclass(MPIField, torch.nn.Module) and issubclass(PlaneSampler, torch.nn.Module)
