"""The ``normal_smoothness`` loss: UNISURF's penalty on normals at jittered surface points."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_volsdf import NormalSmoothnessLoss, SDFGridField
from test_volsdf_grid import BOUNDS, grid_run, make_field

from atlas_core.api import ConfigError, RayBundle

RADIUS = 0.5


def field_and_loss(**options: object) -> tuple[SDFGridField, NormalSmoothnessLoss]:
    """A sphere-started grid field over the unit box and the loss on it."""
    field = make_field(initial_resolution=33, upscale_steps=(), radius=RADIUS, **options)
    context = SimpleNamespace(scene=SimpleNamespace(bounds=BOUNDS), field_module=lambda: field)
    return field, NormalSmoothnessLoss(context)


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
    assert float(loss(rays, outputs, {})) > 2 * float(smooth)


def test_only_opaque_rays_have_surface_points() -> None:
    field, loss = field_and_loss()
    rays, outputs = sphere_hits()
    outputs["acc"] = torch.full_like(outputs["acc"], 0.3)
    assert float(loss(rays, outputs, {})) == 0.0


def test_no_term_during_the_density_warm_up() -> None:
    field, loss = field_and_loss(init="density")
    rays, outputs = sphere_hits()
    assert float(loss(rays, outputs, {})) == 0.0


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
