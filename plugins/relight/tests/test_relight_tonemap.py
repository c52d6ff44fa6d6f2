"""``relight.tonemap``: the renderers shade in linear light and encode it for the images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_relight.data import load_nerv_point
from atlas_plugin_relight.synth import write_point_scene
from atlas_plugin_relight.tonemap import srgb

from atlas_core.api import ConfigError, RunConfig, make_rays
from atlas_core.testing import build_pipeline, load_plugins

VOLUME = {"field": "volsdf_grid", "field.resolution": 24, "field.initial_resolution": 24,
          "field.upscale_steps": [], "relight.grid_resolution": 16,
          "relight.width": 16}  # fmt: skip
SURFACE = {"field": "volsdf", "field.width": 32, "field.features": 16, "field.color_width": 16}


@pytest.fixture(scope="module")
def point_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 generated sphere, 8 training views, one moving light each."""
    return write_point_scene(tmp_path_factory.mktemp("tonemap") / "scene", 16, {"train": 8})


def test_srgb_is_the_standard_curve_with_a_finite_slope_at_black() -> None:
    x = torch.tensor([0.0, 0.002, 0.0031308, 0.18, 0.5, 1.0], requires_grad=True)
    y = srgb(x)
    expected = [0.0, 12.92 * 0.002, 0.040449936, 0.461356, 0.735357, 1.0]
    assert y.tolist() == pytest.approx(expected, abs=1e-5)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert bool(torch.isfinite(slope).all()) and float(slope[0]) == pytest.approx(12.92)
    assert float(srgb(torch.tensor(-0.5))) == 0.0


def render(scene_dir: Path, settings: dict) -> dict[str, torch.Tensor]:
    """Evaluation outputs of a volsdf+relight pipeline on 64 rays over the first view."""
    config = RunConfig()
    config.data.path, config.data.kind = str(scene_dir), "nerv_point"
    config.plugins = ["volsdf", "relight"]
    for key, value in settings.items():
        config.set(key, value)
    scene = load_nerv_point(scene_dir)
    torch.manual_seed(0)
    pipe = build_pipeline(config, load_plugins(config.plugins), scene).eval()
    index = torch.zeros(64, dtype=torch.long)
    rows, cols = torch.arange(64) // 8 * 2 + 1, torch.arange(64) % 8 * 2 + 1  # the whole image
    rays = make_rays(scene.splits["train"], index, rows, cols, scene)
    torch.manual_seed(1)
    with torch.no_grad():
        outputs, _ = pipe(rays)
    return outputs


@pytest.mark.parametrize(
    "settings",
    [{**VOLUME, "field.init": "sphere"}, {**VOLUME, "field.init": "density"}, SURFACE],
    ids=["volume", "volume-warm-up", "surface"],
)
def test_srgb_encodes_the_linear_foreground_and_keeps_the_background(
    point_scene: Path, settings: dict
) -> None:
    linear = render(point_scene, settings)
    encoded = render(point_scene, {**settings, "relight.tonemap": "srgb"})
    images = [("rgb", "acc")]
    if "relight_radiance" in linear:  # relight_volume's geometry image is encoded too
        images.append(("relight_radiance", "relight_opacity"))
    for key, opacity in images:
        acc = linear[opacity]
        assert float(acc.min()) < 0.99 and float(acc.max()) > 0.01  # edges and background
        background = 1.0  # white when evaluating
        foreground = linear[key] - (1 - acc) * background
        assert float(foreground.max()) > 0.05
        expected = srgb(foreground) + (1 - acc) * background
        assert torch.allclose(encoded[key], expected, atol=1e-5)
        assert not torch.allclose(encoded[key], linear[key], atol=1e-3)


def test_an_unknown_tonemap_is_refused(point_scene: Path) -> None:
    message = "'filmic' for relight.tonemap; choose from: linear, srgb"
    with pytest.raises(ConfigError, match=message):
        render(point_scene, {**SURFACE, "relight.tonemap": "filmic"})
