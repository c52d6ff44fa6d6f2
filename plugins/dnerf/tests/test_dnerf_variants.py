"""Deformation options for large motion and the K-Planes choice through a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_dnerf.deformation import MLPDeformation, PlanesDeformation, window
from atlas_plugin_dnerf.kplanes import KPlanesField
from atlas_plugin_dnerf.motion_scene import write_motion_scene
from atlas_plugin_dnerf.options import DNeRFOptions

from atlas_core.api import ConfigError, RunConfig
from atlas_core.testing import Trainer, load_plugins, run_cli

VARIANTS = {"mlp": MLPDeformation, "planes": PlanesDeformation}


def moving(variant: str, seed: int = 0, **options: object) -> torch.nn.Module:
    """A deformation whose zero-initialised last layer was given random weights."""
    torch.manual_seed(seed)
    deformation = VARIANTS[variant](1.5, DNeRFOptions(deformation=variant, **options))
    last = deformation.net[-1]
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        last.weight.normal_(0, 0.1)
        last.bias.normal_(0, 0.1)
    return deformation


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_learned_canonical_frame_moves_at_time_zero(variant: str) -> None:
    x, t0 = torch.rand(16, 3) - 0.5, torch.zeros(16, 1)
    assert moving(variant)(x, t0)["deformation"].abs().max() == 0
    assert moving(variant, canonical="learned")(x, t0)["deformation"].abs().min() > 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_deformation_scale_multiplies_the_reach(variant: str) -> None:
    x, t = torch.rand(16, 3) - 0.5, torch.full((16, 1), 0.7)
    base = moving(variant)(x, t)["deformation"]
    scaled = moving(variant, deformation_scale=3.0)(x, t)["deformation"]
    assert torch.allclose(scaled, 3.0 * base, atol=1e-6)


def test_window_fades_frequencies_in_one_after_another() -> None:
    assert window(0.0, 4).tolist() == [0, 0, 0, 0]
    assert window(0.5, 4).tolist() == pytest.approx([1, 1, 0, 0])
    assert window(0.625, 4).tolist() == pytest.approx([1, 1, 0.5, 0])
    assert window(1.0, 4).tolist() == pytest.approx([1, 1, 1, 1])


def test_mlp_anneal_hides_high_frequencies_until_progress() -> None:
    deformation = moving("mlp", anneal_steps=10)
    x, t = torch.rand(8, 3) - 0.5, torch.rand(8, 1)
    encoded = deformation.windowed(deformation.position_encoding, x)
    assert encoded[:, :3].equal(x) and encoded[:, 3:].abs().max() == 0
    deformation.set_progress(10)
    assert deformation.windowed(deformation.position_encoding, x).equal(
        deformation.position_encoding(x)
    )
    plain = moving("mlp")
    assert plain.windowed(plain.position_encoding, x).equal(plain.position_encoding(x))
    assert not deformation(x, t)["deformation"].equal(
        moving("mlp", anneal_steps=10)(x, t)["deformation"]
    )


def test_planes_anneal_fades_in_the_finer_scales() -> None:
    deformation = moving("planes", anneal_steps=10, plane_resolutions=[4, 8, 16])
    x, t = torch.rand(8, 3) - 0.5, torch.rand(8, 1)
    features = deformation.features(x, t)
    assert features[:, :8].abs().min() > 0 and features[:, 8:].abs().max() == 0
    deformation.set_progress(5)  # half way: the second scale in, the third not yet
    features = deformation.features(x, t)
    assert features[:, 8:16].abs().min() > 0 and features[:, 16:].abs().max() == 0


def trainer(scene: Path, out: Path, plugins: list[str], **settings: object) -> Trainer:
    """A Trainer on the dynamic scene."""
    config = RunConfig(plugins=plugins)
    config.data.path, config.data.kind = str(scene), "dnerf"
    for key, value in {"train.batch_rays": 256, "eval.views": 3, "eval.video_frames": 0,
                       **settings}.items():  # fmt: skip
        config.set(key, value)
    return Trainer(config, load_plugins(plugins), out)


def test_kplanes_needs_no_deformation_and_uses_the_occupancy_grid(dynamic_scene, tmp_path) -> None:  # noqa: ANN001
    run = trainer(dynamic_scene, tmp_path / "k", ["dnerf"], **{"field": "kplanes",
                  "field.resolutions": [8, 16]})  # fmt: skip
    assert isinstance(run.pipeline.field, KPlanesField)
    assert type(run.pipeline.sampler).__name__ == "OccupancySampler"
    assert run.pipeline.sampler.grid.resolution == 64  # the plugin's default for kplanes
    sampler = run.pipeline.sampler
    assert (sampler.rounds, sampler.first_round) == (True, 4)  # its culling, in short rounds
    own = trainer(dynamic_scene, tmp_path / "o", ["dnerf"], **{"field": "kplanes",
                  "field.resolutions": [8, 16], "sampler.first_round": 9})  # fmt: skip
    assert own.pipeline.sampler.first_round == 9  # the run's choice wins


def test_kplanes_turns_its_regularisers_on_unless_the_run_sets_them(
    dynamic_scene, tmp_path
) -> None:  # noqa: ANN001, E501
    run = trainer(dynamic_scene, tmp_path / "r", ["dnerf"], **{"field": "kplanes",
                  "field.resolutions": [8, 16], "losses.static_time": 0.0})  # fmt: skip
    losses = run.config.losses
    chosen = (
        losses["time_smooth"],
        losses["plane_tv"],
        losses["static_time"],
        losses["distortion"],
    )
    assert chosen == (0.1, 1e-4, 0.0, 1e-3)
    assert {"time_smooth", "plane_tv", "static_time", "distortion"} <= set(run.pipeline.losses)
    assert run.config.train.target_samples == 1 << 15  # the plugin's budget for kplanes
    steady = trainer(dynamic_scene, tmp_path / "s", ["dnerf"], **{"field": "kplanes",
                     "field.resolutions": [8, 16], "train.target_samples": 4096})  # fmt: skip
    assert steady.config.train.target_samples == 4096


def test_deformation_none_needs_a_space_time_field(dynamic_scene, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="dnerf.deformation=none needs a field"):
        trainer(dynamic_scene, tmp_path / "n", ["dnerf"], **{"dnerf.deformation": "none"})


def test_kplanes_run_says_there_is_no_flow_map(dynamic_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    args = ["run", "--data", str(dynamic_scene), "--data-kind", "dnerf", "--out", str(out),
            "--plugins", "dnerf", "--set", "field=kplanes", "--max-steps", "2", "--eval-views",
            "1", "--set", "eval.video_frames=0", "--set", "field.resolutions=[8]",
            "--set", "dnerf.maps=1", "--set", "sampler.resolution=16"]  # fmt: skip
    assert run_cli(args) == 0
    assert "no flow maps" in capsys.readouterr().out
    assert not list((out / "test").glob("*_flow.png"))


def test_anneal_steps_advance_with_training(dynamic_scene, tmp_path) -> None:  # noqa: ANN001
    run = trainer(dynamic_scene, tmp_path / "a", ["dnerf"], **{"train.max_steps": 3,
                  "sampler.samples": 8, "field.width": 16, "dnerf.anneal_steps": 6})  # fmt: skip
    run.fit()
    assert float(run.pipeline.field.deformation.progress) == pytest.approx(0.5)


@pytest.mark.slow
def test_kplanes_fits_a_moving_scene_better_than_a_static_field(tmp_path) -> None:  # noqa: ANN001
    """200 steps on a 20x20 large-motion scene; the static field is the same K-Planes
    field with its space-time planes frozen at 1. Fit measured on training views (each
    at its own time): measured 22.3 dB against 19.8 dB."""
    scene = write_motion_scene(tmp_path / "s", size=20, views={"train": 24, "test": 3})
    scores = {}
    for name in ("dynamic", "static"):
        torch.manual_seed(0)
        run = trainer(scene, tmp_path / name, ["dnerf"], **{
            "field": "kplanes", "field.resolutions": [16, 32], "field.time_resolution": 12,
            "field.features": 8, "train.lr": 2e-2, "field.plane_lr_scale": 4.0,
            "field.decoder_lr_scale": 1.0, "train.max_steps": 200,
            "train.target_samples": 8192, "sampler.resolution": 16,
            "losses.time_smooth": 0.1, "losses.plane_tv": 1e-4})  # fmt: skip
        if name == "static":
            for plane in run.pipeline.field.time_planes:
                plane.requires_grad_(False)
        run.fit()
        run.scene.splits["test"] = run.scene.splits["train"]  # how well it fits them
        scores[name] = run.evaluate(write_images=False)["psnr"]
    assert scores["dynamic"] > scores["static"] + 1.0, scores


def test_moved_samples_keep_the_ray_space() -> None:
    """Displaced samples of NDC or contracted rays stay in that space: world view
    directions for shading and contraction of the positions are kept."""
    from atlas_plugin_dnerf.field import moved_samples

    from atlas_core.api import RayBundle, RaySamples

    count = 4
    ones = torch.ones(count, 1)
    rays = RayBundle(
        torch.zeros(count, 3), torch.tensor([[0.0, 0.0, 1.0]]).expand(count, 3), ones * 0,
        ones * 10, ones * 1e-3, torch.zeros(count, dtype=torch.long),
        viewdirs=torch.tensor([[1.0, 0.0, 0.0]]).expand(count, 3), contracted=True,
    )  # fmt: skip
    samples = RaySamples(rays, ones * 3.0, ones * 3.0, torch.arange(count))
    moved = moved_samples(samples, torch.zeros(count, 3))
    assert torch.allclose(moved.positions, samples.positions)
    assert moved.positions.norm(dim=-1).max() < 2.0  # contracted, as before the move
    assert torch.equal(moved.rays.viewdirs, rays.viewdirs)
