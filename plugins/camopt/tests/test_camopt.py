"""camopt: the SO(3) map, corrected training rays, given poses in evaluation, options,
outputs, and what it learns on perturbed poses."""

from __future__ import annotations

import json

import pytest
import torch
from atlas_plugin_camopt import atlas_wrap_field, exp_so3, rotation_angle
from atlas_plugin_camopt.field import PoseCorrection, reaches_positions, refine
from atlas_plugin_camopt.so3 import skew
from camopt_helpers import pose_errors, trainer, training_psnr

from atlas_core.api import (
    ConfigError,
    DisplacedSamples,
    Field,
    PluginError,
    RayBundle,
    RaySamples,
    RunConfig,
    has_density,
    parameter_tags,
)
from atlas_core.testing import run_cli


class Seen(Field):
    """Outputs the sample positions as ``rgb`` and the directions as ``dirs``."""

    def __init__(self, detach: bool = False) -> None:
        super().__init__()
        self.detach = detach

    def forward(self, samples: RaySamples) -> dict[str, torch.Tensor]:
        positions = samples.positions.detach() if self.detach else samples.positions
        return {"density": positions[:, :1].abs(), "rgb": positions, "dirs": samples.directions}


def samples(cameras: list[int], per_ray: int = 2) -> RaySamples:
    """``per_ray`` samples on rays from random origins, one ray per camera index."""
    count = len(cameras)
    generator = torch.Generator().manual_seed(3)
    origins = torch.randn(count, 3, generator=generator)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    ones = torch.ones(count, 1)
    rays = RayBundle(origins, directions, ones, ones * 3, ones * 1e-3, torch.tensor(cameras))
    starts = torch.linspace(1, 2, per_ray).repeat(count)[:, None]
    return RaySamples(rays, starts, starts + 0.1, torch.arange(count).repeat_interleave(per_ray))


def corrected(capacity: int = 4) -> PoseCorrection:
    """A wrapper around ``Seen`` with random corrections."""
    field = refine(Seen(), capacity, lr_scale=1.0)
    with torch.no_grad():
        field.corrections.copy_(
            0.2 * torch.randn(capacity, 6, generator=torch.Generator().manual_seed(0))
        )
    return field


def test_exp_so3_is_a_rotation_with_gradients_at_zero() -> None:
    w = torch.tensor([[0.3, -0.2, 0.5], [1e-5, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    rot = exp_so3(w)
    assert torch.allclose(rot, torch.linalg.matrix_exp(skew(w)), atol=1e-10)
    assert torch.allclose(
        rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    )
    assert torch.allclose(rotation_angle(rot), w.norm(dim=-1), atol=1e-6)
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(exp_so3(zero)[0, 1], zero)  # d R01 / dw = -e_z
    assert torch.allclose(grad, torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64))


def test_identity_at_initialisation() -> None:
    field = refine(Seen(), 4, lr_scale=1.0)
    batch = samples([0, 1, 3])
    assert torch.equal(field(batch)["rgb"], batch.positions)
    assert not has_density(field)  # Seen has none (the contract checks a field with one)


def test_training_samples_move_rigidly_about_their_camera() -> None:
    field = corrected()
    batch = samples([1, 3, 1])
    out = field(batch)
    rot, trans = field.rigid(batch.rays.camera_indices)
    index = batch.ray_indices
    centres = batch.rays.origins[index]
    expected = (rot[index] @ (batch.positions - centres).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(out["rgb"], expected + centres + trans[index], atol=1e-6)
    turned = (rot[index] @ batch.directions.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(out["dirs"], turned, atol=1e-6)
    moved = DisplacedSamples(batch.rays, batch.t_starts, batch.t_ends, index, moved=batch.positions)
    assert torch.allclose(field(moved)["rgb"], out["rgb"], atol=1e-6)


def test_evaluation_keeps_the_given_poses() -> None:
    field = corrected(capacity=2).eval()
    batch = samples([0, 7])  # test-split indices, one beyond the table
    assert torch.equal(field(batch)["rgb"], batch.positions)
    with pytest.raises(PluginError, match="camopt.max_images=2"):
        field.train()(batch)


def test_refined_poses() -> None:
    field = corrected()
    c2w = torch.eye(4).expand(3, 4, 4).clone()
    c2w[:, :3, 3] = torch.randn(3, 3)
    refined = field.refined_poses(c2w)
    rot, trans = field.rigid(torch.arange(3))
    assert torch.allclose(refined[:, :3, :3], rot, atol=1e-6)
    assert torch.allclose(refined[:, :3, 3], c2w[:, :3, 3] + trans)


def test_a_field_without_position_gradients_clashes() -> None:
    assert reaches_positions(Seen()) and not reaches_positions(Seen(detach=True))
    config = RunConfig()
    config.plugins = ["camopt"]
    with pytest.raises(PluginError, match="plugins 'camopt' and field 'tiny'"):
        atlas_wrap_field(Seen(detach=True), config)
    config.set("camopt.lr", 0.0)  # frozen poses need no gradient
    assert isinstance(atlas_wrap_field(Seen(detach=True), config), PoseCorrection)


def test_lr_option(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    moving = trainer(atlas_scene, tmp_path / "m", ("camopt",), 5, camopt__lr=2e-3, train__lr=1e-2)
    assert parameter_tags(moving.pipeline.field.corrections).lr_scale == pytest.approx(0.2)
    moving.fit()
    assert moving.pipeline.field.corrections.abs().max() > 0
    frozen = trainer(atlas_scene, tmp_path / "f", ("camopt",), 5, camopt__lr=0.0)
    frozen.fit()
    assert not frozen.pipeline.field.corrections.requires_grad
    assert torch.count_nonzero(frozen.pipeline.field.corrections) == 0


def test_l2_adds_its_loss_term_and_shrinks_the_corrections(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    norms = {}
    for weight in (0.0, 100.0):
        fitted = trainer(atlas_scene, tmp_path / str(weight), ("camopt",), 30, camopt__lr=1e-2,
                         camopt__l2=weight)  # fmt: skip
        assert ("camopt_l2" in fitted.config.losses) == (weight > 0)
        fitted.fit()
        assert ("camopt_l2" in fitted.history[-1]) == (weight > 0)
        norms[weight] = float(fitted.pipeline.field.corrections[:12].detach().norm(dim=-1).mean())
    assert norms[100.0] < 0.5 * norms[0.0]


def test_too_few_corrections_for_the_training_images(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    fitted = trainer(atlas_scene, tmp_path / "r", ("camopt",), 1, camopt__max_images=5)
    assert fitted.pipeline.field.corrections.shape == (5, 6)
    with pytest.raises(ConfigError, match="12 training images but camopt.max_images=5"):
        fitted.fit()


def test_run_writes_refined_poses_and_reports_corrections(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "camopt",
            "--max-steps", "4", "--eval-views", "1", "--set", "train.batch_rays=128",
            "--set", "eval.video_frames=0", "--set", "field.width=16",
            "--set", "train.log_every=2"]  # fmt: skip
    assert run_cli(args) == 0
    frames = json.loads((out / "camera_poses.json").read_text())["frames"]
    assert len(frames) == 12 and frames[0]["name"]
    assert any(f["given"] != f["refined"] for f in frames)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    logged = [entry for entry in history if "camopt_rotation_deg" in entry]
    assert logged and logged[-1]["camopt_rotation_deg"] > 0 and logged[-1]["camopt_translation"] > 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("camopt.lr=-1.0", "camopt.lr must be >= 0"),
        ("camopt.l2=-1.0", "camopt.l2 must be >= 0"),
        ("camopt.max_images=0", "camopt.max_images must be >= 1"),
        ("camopt.mode=barf", "option 'camopt.mode'"),
    ],
)
def test_bad_options_stop_at_start_up(atlas_scene, tmp_path, capsys, setting, message) -> None:  # noqa: ANN001
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), "--plugins",
            "camopt", "--max-steps", "1", "--set", setting]  # fmt: skip
    assert run_cli(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_refines_perturbed_poses(perturbed_scene, tmp_path) -> None:  # noqa: ANN001
    """Same steps and seed on poses 2 degrees and 0.1 off: camopt fits the training images
    clearly better and its refined poses are closer to the true ones."""
    settings = {"train__lr": 0.02, "train__lr_final": 0.002}
    given = trainer(perturbed_scene, tmp_path / "given", (), 400, **settings)
    given.fit()
    refined = trainer(perturbed_scene, tmp_path / "camopt", ("camopt",), 400, **settings)
    refined.fit()
    before, after = pose_errors(given, perturbed_scene), pose_errors(refined, perturbed_scene)
    print(f"psnr {training_psnr(given):.2f} -> {training_psnr(refined):.2f}, "
          f"pose error {before} -> {after}")  # fmt: skip
    assert training_psnr(refined) > training_psnr(given) + 1.5
    assert after[0] < 0.85 * before[0]
    assert after[1] < before[1] + 0.01  # the centres barely move in 400 steps
    assert after[2] < 0.7 * before[2]


def test_clashes_with_per_step_views_of_many_scenes() -> None:
    from atlas_plugin_camopt import atlas_configure

    config = RunConfig()
    config.plugins = ["pixelnerf", "camopt"]
    with pytest.raises(PluginError, match="plugins 'camopt' and 'pixelnerf' clash"):
        atlas_configure(config)


def test_rays_stay_in_world_space() -> None:
    from types import SimpleNamespace

    from atlas_plugin_camopt import atlas_configure, atlas_train_start

    config = RunConfig()
    config.plugins = ["camopt"]
    atlas_configure(config)
    assert config.data.ndc is False  # NDC off unless chosen
    config.set("data.ndc", True)
    atlas_configure(config)
    assert config.data.ndc is True  # the user's choice stays, and training refuses it
    run = SimpleNamespace(pipeline=refine(Seen(), 4, 1.0), scene=SimpleNamespace(space="ndc"))
    with pytest.raises(ConfigError, match="data.ndc=true puts the rays in NDC"):
        atlas_train_start(run)
