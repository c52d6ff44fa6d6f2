"""The ``normal_smoothness`` loss: UNISURF's penalty on normals at jittered surface points."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_volsdf import NormalSmoothnessLoss, SDFGridField
from test_volsdf_grid import BOUNDS, grid_run, make_field

from atlas_core.api import ConfigError, RayBundle

RADIUS = 0.5


def context_for(module: torch.nn.Module, **volsdf: object) -> SimpleNamespace:
    """A build context over the unit box whose field is ``module``, with volsdf options."""
    return SimpleNamespace(
        scene=SimpleNamespace(bounds=BOUNDS),
        field_module=lambda: module,
        config=SimpleNamespace(plugin_options={"volsdf": volsdf}),
    )


def field_and_loss(**options: object) -> tuple[SDFGridField, NormalSmoothnessLoss]:
    """A sphere-started grid field over the unit box and the loss on it."""
    field = make_field(initial_resolution=33, upscale_steps=(), radius=RADIUS, **options)
    return field, NormalSmoothnessLoss(context_for(field))


def sphere_hits(count: int = 256) -> tuple[RayBundle, dict[str, torch.Tensor]]:
    """Rays from outside aimed at the sphere's surface, with the renderer outputs of an
    opaque hit at the true depth."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    origins = 3.0 * targets
    directions = -targets
    ones = torch.ones(count, 1)
    rays = RayBundle(
        origins, directions, ones * 0, ones * 6, ones * 1e-3, torch.zeros(count).long()
    )
    outputs = {"acc": torch.ones(count, 1), "depth": torch.full((count, 1), 3.0 - RADIUS)}
    return rays, outputs


def test_bumps_cost_more_than_the_smooth_sphere() -> None:
    field, loss = field_and_loss()
    rays, outputs = sphere_hits()
    torch.manual_seed(0)
    smooth = loss(rays, outputs, {})
    assert 0 < float(smooth.detach()) < 0.05  # only the sphere's own curvature over the offset
    (gradient,) = torch.autograd.grad(smooth, field.sdf_grid)
    assert float(gradient.abs().sum()) > 0
    with torch.no_grad():
        field.sdf_grid.add_(0.02 * torch.randn_like(field.sdf_grid))
    torch.manual_seed(0)
    assert float(loss(rays, outputs, {}).detach()) > 2 * float(smooth.detach())


def test_only_opaque_rays_have_surface_points() -> None:
    field, loss = field_and_loss()
    rays, outputs = sphere_hits()
    outputs["acc"] = torch.full_like(outputs["acc"], 0.3)
    assert float(loss(rays, outputs, {})) == 0.0


def test_no_term_during_the_density_warm_up() -> None:
    field, loss = field_and_loss(init="density")
    rays, outputs = sphere_hits()
    assert float(loss(rays, outputs, {})) == 0.0


def test_the_weight_falls_to_zero_by_the_given_step() -> None:
    field = make_field(initial_resolution=33, upscale_steps=(), radius=RADIUS)
    loss = NormalSmoothnessLoss(context_for(field, normal_smoothness_until=100))
    rays, outputs = sphere_hits()
    with torch.no_grad():
        field.sdf_grid.add_(0.02 * torch.randn_like(field.sdf_grid))
    values = []
    for step in (0, 50, 100, 150):
        assert loss.grow(step) is False  # a schedule, not new parameters
        torch.manual_seed(0)
        values.append(float(loss(rays, outputs, {}).detach()))
    assert values[0] > 0
    assert values[1] == pytest.approx(values[0] / 2, rel=1e-5)
    assert values[2] == values[3] == 0.0


def test_a_resumed_loss_goes_on_where_the_schedule_was() -> None:
    field = make_field(initial_resolution=33, upscale_steps=(), radius=RADIUS)
    loss = NormalSmoothnessLoss(context_for(field, normal_smoothness_until=100))
    loss.grow(70)
    resumed = NormalSmoothnessLoss(context_for(field, normal_smoothness_until=100))
    resumed.load_state_dict(loss.state_dict())
    assert resumed.scale == pytest.approx(0.3)
    resumed.load_state_dict({})  # a checkpoint from before the schedule: the step stays
    assert resumed.scale == pytest.approx(0.3)


def test_without_a_schedule_the_weight_stays() -> None:
    field, loss = field_and_loss()
    rays, outputs = sphere_hits()
    torch.manual_seed(0)
    first = float(loss(rays, outputs, {}).detach())
    loss.grow(10_000)
    torch.manual_seed(0)
    assert float(loss(rays, outputs, {}).detach()) == pytest.approx(first) and first > 0


def test_the_schedule_end_must_not_be_negative() -> None:
    field = make_field(initial_resolution=33, upscale_steps=(), radius=RADIUS)
    with pytest.raises(ConfigError, match="normal_smoothness_until"):
        NormalSmoothnessLoss(context_for(field, normal_smoothness_until=-1))


def test_needs_an_sdf_field() -> None:
    context = SimpleNamespace(scene=SimpleNamespace(bounds=BOUNDS),
                              field_module=lambda: torch.nn.Linear(3, 1))  # fmt: skip
    with pytest.raises(ConfigError, match="normal_smoothness"):
        NormalSmoothnessLoss(context)


def test_a_run_trains_with_the_term(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    extra = ("--set", "field.init=sphere", "--set", "losses.normal_smoothness=0.1",
             "--set", "train.log_every=5")  # fmt: skip
    assert grid_run(atlas_scene, out, *extra) == 0
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert any(row.get("normal_smoothness", 0) > 0 for row in rows)


def test_a_run_follows_the_schedule(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    schedule = ("--set", "volsdf.normal_smoothness_until=20")
    extra = ("--set", "field.init=sphere", "--set", "losses.normal_smoothness=0.1",
             "--set", "train.log_every=5", *schedule)  # fmt: skip
    assert grid_run(atlas_scene, out, *extra) == 0
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    terms = {row["step"]: row["normal_smoothness"] for row in rows if "normal_smoothness" in row}
    assert any(value > 0 for step, value in terms.items() if step < 20)
    late = [value for step, value in terms.items() if step > 20]
    assert late and all(value == 0 for value in late)
    bad = ("--set", "volsdf.normal_smoothness_until=-5")
    assert grid_run(atlas_scene, tmp_path / "bad", *bad) == 2


class Bumpy(torch.nn.Module):
    """An analytic SDF network: a sphere of radius ``RADIUS`` plus learnable bumps, which
    records the points it is asked about."""

    def __init__(self, bumps: float):
        super().__init__()
        self.bumps = torch.nn.Parameter(torch.tensor(bumps))
        self.seen: list[torch.Tensor] = []

    def sdf(self, positions: torch.Tensor) -> torch.Tensor:
        """Signed distance [N, 1] with sin bumps of amplitude ``bumps``."""
        self.seen.append(positions.detach())
        waves = torch.sin(25.0 * positions).prod(dim=-1, keepdim=True)
        return positions.norm(dim=-1, keepdim=True) - RADIUS + self.bumps * waves


def network_loss(bumps: float) -> tuple[Bumpy, NormalSmoothnessLoss]:
    """The loss on an SDF network (no grid derivative: autograd's normals)."""
    network = Bumpy(bumps)
    return network, NormalSmoothnessLoss(context_for(network))


def test_network_normals_come_from_autograd_with_a_graph() -> None:
    rays, outputs = sphere_hits()
    smooth_net, smooth_loss = network_loss(0.0)
    bumpy_net, bumpy_loss = network_loss(0.02)
    torch.manual_seed(0)
    smooth = smooth_loss(rays, outputs, {})
    torch.manual_seed(0)
    bumpy = bumpy_loss(rays, outputs, {})
    assert 0 < float(smooth.detach()) < 0.05 and float(bumpy.detach()) > 4 * float(smooth.detach())
    (gradient,) = torch.autograd.grad(bumpy, bumpy_net.bumps)  # double backward
    assert float(gradient) > 0  # larger bumps, rougher normals


def test_surface_points_are_in_the_space_the_field_sees() -> None:
    rays, outputs = sphere_hits(64)
    far = replace(rays, origins=rays.origins * 10.0, contracted=True)
    depth = torch.full((64, 1), 25.0)  # surface points 5 units out: contracted to 1.8
    network, loss = network_loss(0.0)
    loss(far, {"acc": outputs["acc"], "depth": depth}, {})
    seen = network.seen[0][:64]
    expected = far.points(torch.arange(64), depth.view(-1))  # the bundle's own mapping
    assert torch.allclose(seen, expected, atol=1e-5)
    assert torch.allclose(seen.norm(dim=-1), torch.full((64,), 1.8), atol=1e-4)  # not 5
