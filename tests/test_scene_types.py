"""Scene type from the cameras (forward-facing -> NDC, unbounded 360 -> contraction,
object -> box), the data.ndc / data.contract options, rays in each space, and a short
NDC training run on a small forward-facing LLFF scene written here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData, Views, image_rays, make_rays
from atlas_core.data.scene_type import (
    CONTRACT_FAR,
    choose_space,
    configure_space,
    detect_scene_type,
)
from atlas_core.engine.setup import load_scene
from atlas_core.errors import ConfigError
from atlas_core.nerf.cameras import look_at
from atlas_core.nerf.contraction import CONTRACTED_BOUNDS
from atlas_core.plugins import load
from atlas_core.testing import forward_facing_scene, requires_plugins

W, H, FOCAL = 16, 12, 14.0


def pose(eye: list[float], target: list[float], up: tuple = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenGL camera-to-world looking from ``eye`` at ``target``."""
    d = torch.float64
    return look_at(
        torch.tensor(eye, dtype=d), torch.tensor(target, dtype=d), torch.tensor(up, dtype=d)
    )


def forward_grid() -> torch.Tensor:
    """A 3x3 grid of cameras in the z = 0 plane, all looking down -Z."""
    return torch.stack(
        [
            pose([0.1 * (i % 3) - 0.1, 0.1 * (i // 3) - 0.1, 0.0], [0.0, 0.0, -10.0])
            for i in range(9)
        ]
    )


def ring(count: int = 12, radius: float = 1.0) -> torch.Tensor:
    """Cameras on a horizontal ring looking in at the origin."""
    eyes = [
        [radius * math.cos(a), 0.1, radius * math.sin(a)]
        for a in np.linspace(0, 6.28, count, endpoint=False)
    ]
    return torch.stack([pose(e, [0.0, 0.0, 0.0]) for e in eyes])


def dome(count: int = 16) -> torch.Tensor:
    """NeRF-synthetic-like cameras on the upper hemisphere (+Z up), radius 4."""
    out = []
    for i in range(count):
        a, e = 2 * math.pi * i / count, math.radians(20 + 50 * (i % 3) / 2)
        eye = [4 * math.cos(e) * math.cos(a), 4 * math.cos(e) * math.sin(a), 4 * math.sin(e)]
        out.append(pose(eye, [0.0, 0.0, 0.0], (0.0, 0.0, 1.0)))
    return torch.stack(out)


def scene_of(c2w: torch.Tensor, near: float, far: float, measured: bool) -> SceneData:
    """A tiny SceneData (grey images) with these cameras."""
    images = torch.full((len(c2w), H, W, 4), 128, dtype=torch.uint8)
    views = Views(images, c2w.float(), FOCAL)
    return SceneData(
        {"train": views}, near=near, far=far, bounds=(-3, -3, -3, 3, 3, 3), measured_depths=measured
    )


def test_detects_forward_facing_ring_and_dome() -> None:
    """Forward grid -> forward-facing; ring with far content -> unbounded; ring with content
    inside and the dome (no measured depths) -> bounded object."""
    assert detect_scene_type(scene_of(forward_grid(), 1.2, 10.0, True))[0] == "forward-facing"
    assert detect_scene_type(scene_of(forward_grid(), 0.05, 4.0, False))[0] == "forward-facing"
    kind, why = detect_scene_type(scene_of(ring(), 0.2, 20.0, True))
    assert kind == "unbounded 360" and "20" in why
    assert detect_scene_type(scene_of(ring(), 0.2, 2.1, True))[0] == "bounded object"
    kind, why = detect_scene_type(scene_of(dome(), 2.0, 6.0, False))
    assert kind == "bounded object" and "data.contract=true" in why
    assert detect_scene_type(scene_of(dome(), 2.0, 60.0, True))[0] == "unbounded 360"


def test_forward_grid_spread_wide_is_not_forward_facing() -> None:
    """Cameras that look one way but spread wide against the near depth keep the box."""
    wide = forward_grid().clone()
    wide[:, :3, 3] *= 20.0
    assert detect_scene_type(scene_of(wide, 1.2, 10.0, True))[0] == "bounded object"


def test_options_override_and_clash() -> None:
    """data.ndc / data.contract true or false override the cameras; both true is an error."""
    forward = scene_of(forward_grid(), 1.2, 10.0, True)
    unbounded = scene_of(ring(), 0.2, 20.0, True)
    obj = scene_of(dome(), 2.0, 6.0, False)
    assert choose_space(forward)[0] == "ndc"
    space, line = choose_space(forward, ndc=False)
    assert space == "box" and line.endswith("data.ndc=false overrides")
    assert choose_space(unbounded)[0] == "contract"
    assert choose_space(unbounded, contract=False)[0] == "box"
    assert choose_space(obj)[0] == "box"
    space, line = choose_space(obj, contract=True)
    assert space == "contract" and "data.contract=true overrides" in line
    assert choose_space(obj, ndc=True)[0] == "ndc"
    assert choose_space(unbounded, ndc=True)[0] == "ndc"
    with pytest.raises(ConfigError, match="data.ndc=true and data.contract=true"):
        choose_space(obj, ndc=True, contract=True)


def test_ndc_scene_rays_and_box() -> None:
    """NDC scene: t from 0 to 1, unit world viewdirs for shading, positions in the box."""
    scene, line = configure_space(scene_of(forward_grid(), 1.2, 10.0, True))
    assert scene.space == "ndc" and "NDC rays" in line
    assert (scene.near, scene.far) == (0.0, 1.0) and scene.ndc_frame.focal == FOCAL
    rays = image_rays(scene.split("train"), 4, scene)
    assert torch.allclose(rays.viewdirs.norm(dim=-1), torch.ones(len(rays)))
    assert bool((rays.near >= 0).all() and (rays.far <= 1).all() and (rays.far > rays.near).all())
    low, high = torch.tensor(scene.bounds[:3]), torch.tensor(scene.bounds[3:])
    for t in (rays.near, rays.far, 0.5 * (rays.near + rays.far)):
        p = rays.origins + rays.directions * t
        assert bool(((p >= low - 1e-4) & (p <= high + 1e-4)).all())
    # the mean camera's pixel (col, row) starts at NDC ((col - W/2) / (W/2), -(row - H/2) / (H/2))
    index, row, col = torch.tensor([4]), torch.tensor([H // 2]), torch.tensor([W // 2])
    centre = make_rays(scene.split("train"), index, row, col, scene)
    expected = torch.tensor([0.5 / (W / 2), -0.5 / (H / 2)])
    assert torch.allclose(centre.origins[0, :2], expected, atol=1e-5)


def test_ndc_needs_one_centred_pinhole() -> None:
    """Per-view intrinsics that differ (or an off-centre principal point) cannot use NDC."""
    from atlas_core.nerf.cameras import INTRINSICS

    scene = scene_of(forward_grid(), 1.2, 10.0, True)
    intr = torch.tensor([[FOCAL, FOCAL, W / 2, H / 2]]).repeat(9, 1)
    intr[3, 2] += 2.0
    scene.splits["train"].extras[INTRINSICS] = intr
    with pytest.raises(ConfigError, match="NDC rays need one pinhole camera"):
        configure_space(scene)


def test_contracted_scene_rays_and_scale() -> None:
    """Contracted scene: cameras inside the unit ball, rays to CONTRACT_FAR, contracted
    sample positions inside [-2, 2]^3."""
    scene, _ = configure_space(scene_of(ring(radius=5.0), 1.0, 100.0, True))
    assert scene.space == "contract" and scene.bounds == CONTRACTED_BOUNDS
    eyes = scene.split("train").c2w[:, :3, 3]
    assert float(eyes.norm(dim=-1).max()) <= 1.0 + 1e-5
    assert scene.near == pytest.approx(0.2, rel=1e-3) and scene.far == CONTRACT_FAR
    rays = image_rays(scene.split("train"), 0, scene)
    assert rays.contracted and bool((rays.far == CONTRACT_FAR).all())
    far_points = rays.points(torch.arange(len(rays)), rays.far.view(-1))
    assert bool((far_points.norm(dim=-1) < 2.0).all() & (far_points.norm(dim=-1) > 1.99).all())
    # rotations are unchanged by the similarity
    original = ring(radius=5.0).float()
    assert torch.allclose(scene.split("train").c2w[:, :3, :3], original[:, :3, :3], atol=1e-5)


def test_stratified_bins_of_contracted_rays_are_even_in_s() -> None:
    """Stratified bins of contracted rays are even in s: dense near, sparse far (the
    occupancy march of contracted scenes is tested with the voxel and ngp plugins)."""
    from atlas_core.nerf.contraction import distance_to_s
    from atlas_core.nerf.samplers import stratified_edges

    scene, _ = configure_space(scene_of(ring(radius=5.0), 1.0, 100.0, True))
    rays = image_rays(scene.split("train"), 0, scene)[:8]
    edges = stratified_edges(rays, 16, jitter=False)
    assert torch.allclose(edges[:, 0:1], rays.near) and torch.allclose(
        edges[:, -1:], rays.far, rtol=1e-4
    )
    s = distance_to_s(edges)
    gaps = s[:, 1:] - s[:, :-1]
    assert torch.allclose(gaps, gaps[:, :1].expand_as(gaps), rtol=1e-3)
    assert float((edges[:, -1] - edges[:, -2]).min()) > 10 * float(
        (edges[:, 1] - edges[:, 0]).max()
    )


def config_for(path: Path, **sets: object) -> RunConfig:
    """A run config on ``path`` with ``--set`` style overrides."""
    config = RunConfig()
    config.data.path = str(path)
    for key, value in sets.items():
        config.set(key.replace("__", "."), value)
    return config


def test_config_options_reach_the_scene(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """data.ndc=false keeps the box on a forward-facing capture; data.contract=true
    contracts it; auto picks NDC and says why; the run records its choice."""
    data = forward_facing_scene(tmp_path / "ff")
    plugins = load()
    config = config_for(data)
    scene = load_scene(config, plugins)
    assert scene.space == "ndc" and config.data.ndc is True and config.data.contract is False
    assert "scene type: forward-facing (all 9 cameras within" in capsys.readouterr().out
    config = config_for(data, data__ndc=False)
    assert load_scene(config, plugins).space == "box"
    assert "data.ndc=false overrides" in capsys.readouterr().out
    assert load_scene(config_for(data, data__contract=True), plugins).space == "contract"
    with pytest.raises(ConfigError, match="choose one ray space"):
        load_scene(config_for(data, data__ndc=True, data__contract=True), plugins)
    with pytest.raises(ConfigError, match="data.ndc"):
        config_for(data, data__ndc="sometimes")


def test_ndc_training_smoke(tmp_path: Path) -> None:
    """Steps of the core field on a forward-facing scene in NDC: finite, falling loss, an
    evaluation above chance and a video along the forward-facing path."""
    from atlas_core.testing.fixtures import quick_trainer

    data = forward_facing_scene(tmp_path / "ff")
    trainer = quick_trainer(
        data,
        tmp_path / "run",
        train__max_steps=300,
        train__log_every=30,
        data__test_every=4,
        eval__video_frames=2,
    )
    assert trainer.scene.space == "ndc"
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").open()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) >= 4 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) < sum(losses[:2])
    metrics = trainer.finish()
    assert metrics["test"]["psnr"] > 20.0
    assert (tmp_path / "run" / "video.mp4").stat().st_size > 0


@requires_plugins("mpi")
def test_mpi_keeps_world_rays_unless_asked(tmp_path: Path) -> None:
    """The mpi field's planes live in world space: auto keeps the box on forward-facing
    data; an explicit data.ndc=true still wins."""
    from atlas_core.build import configure

    data = forward_facing_scene(tmp_path / "ff")
    plugins = load(["mpi"])
    config = config_for(data, plugins=["mpi"])
    configure(config, plugins)
    assert load_scene(config, plugins).space == "box"
    config = config_for(data, plugins=["mpi"], data__ndc=True)
    configure(config, plugins)
    assert config.data.ndc is True


def test_runs_recorded_before_ray_spaces_keep_the_box() -> None:
    """A run's config.toml (it records versions) without data.ndc/contract used the box;
    a hand-written config without them means auto."""
    old = RunConfig.from_dict({"versions": {"nerf-atlas": "1.0"}, "data": {"path": "x"}})
    assert (old.data.ndc, old.data.contract) == (False, False)
    fresh = RunConfig.from_dict({"data": {"path": "x"}})
    assert (fresh.data.ndc, fresh.data.contract) == ("auto", "auto")
    recorded = RunConfig.from_dict({"versions": {"a": "1"}, "data": {"path": "x", "ndc": True}})
    assert (recorded.data.ndc, recorded.data.contract) == (True, False)


def test_video_path_spirals_around_forward_facing_cameras() -> None:
    """Cameras that look one way get a closed spiral around the mean camera with its
    orientation; cameras around an object keep the turntable around the origin."""
    from atlas_core.commands.video import orbit

    grid = forward_grid().float()
    poses = orbit(grid, 24)
    assert poses.shape == (24, 4, 4)
    mean_rotation = torch.eye(3)  # the grid's cameras all look down -Z with +Y up
    assert torch.allclose(poses[:, :3, :3], mean_rotation.expand(24, 3, 3), atol=1e-5)
    offsets = poses[:, :3, 3] - grid[:, :3, 3].mean(0)
    assert float(offsets[:, :2].abs().max()) <= 0.1 + 1e-5  # within the cameras' spread
    assert float(offsets[:, :2].norm(dim=-1).min()) > 0.05  # and circling, not standing
    turntable = orbit(dome().float(), 8)
    radii = turntable[:, :3, 3].norm(dim=-1)
    assert torch.allclose(radii, torch.full((8,), 4.0), atol=1e-4)


def test_turntable_turns_about_the_cameras_up_axis() -> None:
    """A ring with +Y up (LLFF's recentred frame) orbits about +Y, at the ring's height."""
    from atlas_core.commands.video import orbit

    poses = orbit(ring(radius=1.0).float(), 12)
    assert bool((poses[:, 1, 1] > 0.99).all())  # camera up is world +Y
    assert torch.allclose(poses[:, 1, 3], torch.full((12,), 0.1), atol=1e-3)
    assert torch.allclose(poses[:, :3, 3].norm(dim=-1), torch.full((12,), 1.005), atol=1e-3)


def test_ndc_scale_without_measured_depths() -> None:
    """Measured near depth 1.2 keeps LLFF's scale; a default near (0.05, nothing measured)
    is replaced by 3x the cameras' spread, so the cameras spread 1.2 / 3 after scaling."""
    measured, _ = configure_space(scene_of(forward_grid(), 1.2, 10.0, True))
    spread = measured.split("train").c2w[:, :3, 3].norm(dim=-1).max()
    assert float(spread) == pytest.approx(math.sqrt(0.02), rel=1e-4)
    guessed, line = configure_space(scene_of(forward_grid(), 0.05, 4.0, False))
    assert guessed.space == "ndc" and "never meet" in line
    spread = guessed.split("train").c2w[:, :3, 3].norm(dim=-1).max()
    assert float(spread) == pytest.approx(1.2 / 3.0, rel=1e-4)


def test_camera_only_rules_are_cautious() -> None:
    """Without measured depths a cap of cameras converging on an object stays an object
    (stricter spread rule), and two cameras are too few to call forward-facing."""
    cap = []
    for i in range(9):
        a, e = 2 * math.pi * i / 9, math.radians(70)  # cameras within 20 deg of the pole
        eye = [3 * math.cos(e) * math.cos(a), 3 * math.cos(e) * math.sin(a), 3 * math.sin(e)]
        cap.append(pose(eye, [0.0, 0.0, 0.0], (0.0, 1.0, 0.0)))
    kind, why = detect_scene_type(scene_of(torch.stack(cap), 2.0, 4.0, False))
    assert kind == "bounded object" and "0.25 x where the optical axes meet" in why
    assert detect_scene_type(scene_of(forward_grid()[:2], 1.2, 10.0, True))[0] == "bounded object"
