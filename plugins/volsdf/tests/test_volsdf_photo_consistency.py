"""The ``photo_consistency`` loss: Geo-NeuS's NCC of surface patches across nearby views."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from atlas_plugin_volsdf import PhotoConsistencyLoss
from atlas_plugin_volsdf.photo_consistency import ncc, nearest_views
from test_volsdf_grid import grid_run
from torch import Tensor, nn

from atlas_core.api import ConfigError, SceneData, Views, look_at, make_rays

SIZE = 48
FOCAL = 50.0
EYES = [(0.0, -0.6, 2.0), (0.5, -0.5, 2.0), (-0.5, -0.5, 2.0), (0.3, 0.4, 2.1), (-0.4, 0.3, 1.9)]


class PlaneSDF(nn.Module):
    """The plane z = height as a signed distance (a learnable height)."""

    def __init__(self, height: float = 0.0):
        super().__init__()
        self.height = nn.Parameter(torch.tensor(height))

    def sdf(self, positions: Tensor) -> Tensor:
        """Height above the plane."""
        return positions[:, 2:3] - self.height


def texture(x: Tensor, y: Tensor) -> Tensor:
    """Smooth grey texture on the plane z = 0."""
    return 0.5 + 0.3 * torch.sin(23 * x + 1) * torch.sin(19 * y) + 0.1 * torch.sin(41 * x - 13 * y)


def plane_scene(shade: float = 1.0, flat: bool = False) -> SceneData:
    """Views of the textured plane z = 0 from above; ``shade`` dims every image."""
    poses = [
        look_at(torch.tensor(eye), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])) for eye in EYES
    ]
    blank = torch.zeros(len(EYES), SIZE, SIZE, 4, dtype=torch.uint8)
    views = Views(blank, torch.stack(poses), FOCAL)
    scene = SceneData({"train": views}, near=0.5, far=4.0, bounds=(-1, -1, -1, 1, 1, 1))
    for index in range(len(EYES)):
        rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        image = torch.full((SIZE * SIZE,), index, dtype=torch.long)
        rays = make_rays(views, image, rows.reshape(-1), cols.reshape(-1), scene, False)
        hit = rays.origins + rays.directions * (-rays.origins[:, 2:] / rays.directions[:, 2:])
        grey = torch.full_like(hit[:, 0], 0.5) if flat else texture(hit[:, 0], hit[:, 1])
        value = (shade * grey).clamp(0, 1).mul(255).round().to(torch.uint8).view(SIZE, SIZE)
        views.images[index, ..., :3] = value[..., None]
        views.images[index, ..., 3] = 255
    return scene


def loss_on(scene: SceneData, field: nn.Module) -> PhotoConsistencyLoss:
    """The loss built for a scene and a field."""
    return PhotoConsistencyLoss(SimpleNamespace(scene=scene, field_module=lambda: field))


def rays_to_height(scene: SceneData, height: float | Tensor) -> tuple:
    """Rays through the first view's middle pixels, with renderer outputs of an opaque hit
    on the plane z = ``height``."""
    views = scene.split("train")
    rows, cols = torch.meshgrid(torch.arange(14, 34), torch.arange(14, 34), indexing="ij")
    image = torch.zeros(rows.numel(), dtype=torch.long)
    rays = make_rays(views, image, rows.reshape(-1), cols.reshape(-1), scene, False)
    depth = (height - rays.origins[:, 2:]) / rays.directions[:, 2:]
    return rays, {"acc": torch.ones_like(depth), "depth": depth}


def test_ncc_ignores_brightness_and_contrast() -> None:
    patch = torch.rand(3, 25)
    others = torch.stack([patch, 0.2 * patch + 0.1, -patch], dim=1)
    values = ncc(patch, others)
    assert torch.allclose(values[:, :2], torch.ones(3, 2), atol=1e-4)
    assert torch.allclose(values[:, 2], -torch.ones(3), atol=1e-4)


def test_neighbours_are_the_nearest_directions() -> None:
    centres = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1.0, 0], [-1.0, 0, 0]])
    found = nearest_views(centres, torch.zeros(3), 2)
    assert found[0].tolist() == [1, 2] and found[3].tolist()[0] == 2
    assert 0 not in found[0] and 3 not in found[3]


@pytest.mark.parametrize("shade", [1.0, 0.08])
def test_the_true_surface_costs_least_even_in_the_dark(shade: float) -> None:
    """The plane's true height costs less than a raised one, dim images (shadow) as well."""
    scene = plane_scene(shade)
    loss = loss_on(scene, PlaneSDF())
    costs = [float(loss(*rays_to_height(scene, height), {})) for height in (0.0, 0.05, 0.1)]
    assert costs[0] < 0.06 and costs[0] < costs[1] < costs[2]


def test_the_gradient_moves_a_raised_surface_down() -> None:
    """At a raised height the loss lowers it: its gradient on the hit depth is negative."""
    scene = plane_scene()
    loss = loss_on(scene, PlaneSDF())
    height = torch.tensor(0.04, requires_grad=True)
    rays, outputs = rays_to_height(scene, height)
    (gradient,) = torch.autograd.grad(loss(rays, outputs, {}), height)
    assert float(gradient) > 0  # a lower height costs less


def test_untextured_and_transparent_rays_add_nothing() -> None:
    flat = plane_scene(flat=True)
    assert float(loss_on(flat, PlaneSDF())(*rays_to_height(flat, 0.05), {})) == 0.0
    scene = plane_scene()
    rays, outputs = rays_to_height(scene, 0.05)
    outputs["acc"] = torch.full_like(outputs["acc"], 0.3)
    assert float(loss_on(scene, PlaneSDF())(rays, outputs, {})) == 0.0


def test_it_needs_an_sdf_world_rays_and_two_views() -> None:
    scene = plane_scene()
    with pytest.raises(ConfigError, match="needs a field with an SDF"):
        loss_on(scene, nn.Linear(1, 1))
    scene.space = "ndc"
    with pytest.raises(ConfigError, match="world-space rays"):
        loss_on(scene, PlaneSDF())
    one = plane_scene()
    views = one.splits["train"]
    one.splits["train"] = Views(views.images[:1], views.c2w[:1], FOCAL)
    with pytest.raises(ConfigError, match="two training views"):
        loss_on(one, PlaneSDF())


def test_a_run_trains_with_it(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """``--set losses.photo_consistency=W`` adds the term after volsdf_grid's warm-up."""
    out = tmp_path / "run"
    extra = ("--set", "field.warmup_steps=20", "--set", "losses.photo_consistency=0.5")
    assert grid_run(atlas_scene, out, *extra) == 0
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    values = [line["photo_consistency"] for line in lines if "photo_consistency" in line]
    assert values and max(values) > 0
