"""The live viewer's per-light outputs: one entry per training light, lit by that light."""

from __future__ import annotations

import atlas_plugin_relight
import pytest
import torch
from atlas_plugin_relight.lights import POSITIONS, POWER, SCALED
from atlas_plugin_relight.synth import write_point_scene
from atlas_plugin_relight.viewer import MAX_LIGHTS, training_lights

from atlas_core.api import RunConfig, ViewerHandle, Views, image_rays
from atlas_core.testing import Trainer, load_plugins

SETTINGS = {"field": "volsdf", "field.width": 32, "field.features": 16, "field.color_width": 16,
            "train.max_steps": 30, "train.batch_rays": 256, "train.lr": 1e-3,
            "train.log_every": 50, "eval.views": 0, "eval.video_frames": 0,
            "device": "cpu"}  # fmt: skip


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    """A briefly trained volsdf+relight run on a 16x16 scene lit by a moving light."""
    root = tmp_path_factory.mktemp("relight_viewer")
    scene = write_point_scene(root / "scene", 16, {"train": 12, "test": 2})
    config = RunConfig()
    config.data.path, config.data.kind = str(scene), "nerv_point"
    config.plugins = ["volsdf", "relight"]
    for key, value in SETTINGS.items():
        config.set(key, value)
    torch.manual_seed(0)
    trainer = Trainer(config, load_plugins(config.plugins), root / "run")
    trainer.fit()
    return trainer


def test_training_lights_are_distinct_and_spread() -> None:
    """Repeated lights count once; more than MAX_LIGHTS are thinned evenly; none: empty."""
    positions = torch.tensor([[0.0, 0, 3], [0, 0, 3], [1, 0, 3], [2, 0, 3], [3, 0, 3],
                              [4, 0, 3], [5, 0, 3]])[:, None, :]  # fmt: skip
    extras = {POSITIONS: positions, POWER: torch.ones(7, 1, 3),
              SCALED: torch.zeros(7)}  # fmt: skip
    views = Views(torch.zeros(7, 2, 2, 4), torch.eye(4).expand(7, 4, 4), 1.0, extras=extras)
    lights = training_lights(views)
    xs = [float(light[POSITIONS][0, 0]) for light in lights]
    assert len(lights) == MAX_LIGHTS and xs[0] == 0.0 and xs[-1] == 5.0
    assert len(set(xs)) == MAX_LIGHTS
    assert training_lights(views, 10) and len(training_lights(views, 10)) == 6
    assert training_lights(Views(torch.zeros(1, 2, 2, 4), torch.eye(4)[None], 1.0)) == []


def test_each_light_output_renders_the_scene_under_that_light(trainer: Trainer) -> None:
    """``light k`` equals rendering the rays with training light k, whatever lights the
    rays carried, and different lights give different images."""
    outputs: dict = {}
    atlas_plugin_relight.atlas_viewer_setup(viewer=ViewerHandle(outputs), run=trainer.run)
    lights = training_lights(trainer.scene.split("train"))
    assert list(outputs) == [f"light {i + 1}" for i in range(len(lights))]
    assert len(lights) == MAX_LIGHTS  # 12 images, each with its own light position
    rays = image_rays(trainer.scene.split("test"), 0, trainer.scene)
    trainer.pipeline.eval()
    with torch.no_grad():
        rendered = trainer.pipeline.render(rays, 4096)
        images = [outputs[name](rays, rendered) for name in outputs]
        first = dict(rays.extras)
        for key, value in lights[0].items():
            first[key] = value.expand(len(rays), *value.shape)
        rays.extras = first
        expected = trainer.pipeline.render(rays, 4096)["rgb"]
    assert images[0].shape == (len(rays), 3)
    assert torch.allclose(images[0], expected, atol=1e-6)
    assert float((images[0] - images[-1]).abs().max()) > 1e-3
