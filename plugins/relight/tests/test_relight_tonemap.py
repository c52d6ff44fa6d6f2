"""``relight.tonemap``: the renderers shade in linear light and encode it for the images."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from atlas_plugin_relight.data import images_encoding, load_nerv_point
from atlas_plugin_relight.synth import write_point_scene
from atlas_plugin_relight.tonemap import declared_encoding
from PIL import Image, PngImagePlugin

from atlas_core.api import (
    ConfigError,
    DataError,
    RunConfig,
    linear_to_srgb,
    make_rays,
    srgb_to_linear,
)
from atlas_core.testing import build_pipeline, configured, load_plugins, run_cli

VOLUME = {"field": "volsdf_grid", "field.resolution": 24, "field.initial_resolution": 24,
          "field.upscale_steps": [], "relight.grid_resolution": 16,
          "relight.width": 16}  # fmt: skip
SURFACE = {"field": "volsdf", "field.width": 32, "field.features": 16, "field.color_width": 16}


@pytest.fixture(scope="module")
def point_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 generated sphere, 8 training views, one moving light each."""
    return write_point_scene(tmp_path_factory.mktemp("tonemap") / "scene", 16, {"train": 8})


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
        expected = linear_to_srgb(foreground) + (1 - acc) * background
        assert torch.allclose(encoded[key], expected, atol=1e-5)
        assert not torch.allclose(encoded[key], linear[key], atol=1e-3)


def test_an_unknown_tonemap_is_refused(point_scene: Path) -> None:
    message = "'filmic' for relight.tonemap; choose from: auto, linear, srgb"
    with pytest.raises(ConfigError, match=message):
        render(point_scene, {**SURFACE, "relight.tonemap": "filmic"})


def redeclare(scene: Path, out: Path, encoding: str | None) -> Path:
    """A copy of ``scene`` whose JSON declares ``encoding`` (no key when None)."""
    shutil.copytree(scene, out)
    path = out / "transforms_train.json"
    meta = json.loads(path.read_text())
    meta.pop("encoding", None)
    if encoding is not None:
        meta["encoding"] = encoding
    path.write_text(json.dumps(meta))
    return out


def test_auto_takes_the_declared_encoding_and_srgb_when_none(
    point_scene: Path, tmp_path: Path
) -> None:
    assert json.loads((point_scene / "transforms_train.json").read_text())["encoding"] == "linear"
    linear = render(point_scene, {**SURFACE, "relight.tonemap": "linear"})["rgb"]
    encoded = render(point_scene, {**SURFACE, "relight.tonemap": "srgb"})["rgb"]
    assert not torch.allclose(linear, encoded, atol=1e-3)
    assert torch.equal(render(point_scene, SURFACE)["rgb"], linear)  # auto is the default
    declared = redeclare(point_scene, tmp_path / "srgb", "srgb")
    assert torch.equal(render(declared, SURFACE)["rgb"], encoded)
    silent = redeclare(point_scene, tmp_path / "silent", None)
    assert torch.equal(render(silent, {**SURFACE, "relight.tonemap": "auto"})["rgb"], encoded)


def test_a_png_with_gamma_one_declares_linear_light(point_scene: Path, tmp_path: Path) -> None:
    scene = redeclare(point_scene, tmp_path / "scene", None)
    assert images_encoding(scene) == "srgb"
    chunks = PngImagePlugin.PngInfo()
    chunks.add(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0, in units of 1/100000
    with Image.open(scene / "train" / "r_0.png") as image:
        image.load()
    image.save(scene / "train" / "r_0.png", pnginfo=chunks)
    assert images_encoding(scene) == "linear"


def test_float_images_hold_linear_light_unless_the_json_says_otherwise() -> None:
    path = Path("transforms_train.json")
    assert declared_encoding(path, {}, Path("r_0.exr")) == "linear"
    assert declared_encoding(path, {}, Path("r_0.HDR")) == "linear"
    assert declared_encoding(path, {"encoding": "srgb"}, Path("r_0.exr")) == "srgb"
    assert declared_encoding(path, {}, Path("missing.jpg")) == "srgb"


def test_the_resolved_tonemap_is_recorded_and_srgb_compares_linear_light(
    point_scene: Path, tmp_path: Path
) -> None:
    plugins = ["volsdf", "relight"]
    config = configured(plugins, {"data.path": str(point_scene)})
    assert config.plugin_options["relight"]["tonemap"] == "linear"
    assert not config.train.loss_linear and config.train.loss_gamma == 1.0
    silent = str(redeclare(point_scene, tmp_path / "silent", None))
    config = configured(plugins, {"data.path": silent})
    assert config.plugin_options["relight"]["tonemap"] == "srgb"
    assert config.train.loss_linear and config.train.loss_gamma == 1.0
    for chosen in ({"train.loss_gamma": 2.4}, {"train.loss_linear": False}):
        assert not configured(plugins, {"data.path": silent, **chosen}).train.loss_linear
    forced = configured(plugins, {"data.path": str(point_scene), "relight.tonemap": "srgb"})
    assert forced.train.loss_linear


def test_the_geometry_term_compares_linear_light_on_srgb_images(
    point_scene: Path, tmp_path: Path
) -> None:
    silent = redeclare(point_scene, tmp_path / "silent", None)
    outputs = {"relight_radiance": torch.full((4, 3), 0.25), "target_rgb": torch.full((4, 3), 0.5)}
    decoded = srgb_to_linear(torch.tensor([0.25, 0.5]))
    for scene, expected in ((point_scene, 0.25**2), (silent, float(decoded[0] - decoded[1]) ** 2)):
        config = RunConfig()
        config.data.path, config.data.kind = str(scene), "nerv_point"
        config.plugins = ["volsdf", "relight"]
        for key, value in VOLUME.items():
            config.set(key, value)
        pipe = build_pipeline(config, load_plugins(config.plugins), load_nerv_point(scene))
        loss = pipe.losses["relight_radiance"](None, outputs, {})
        assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_an_unknown_declared_encoding_names_the_file(
    point_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scene = redeclare(point_scene, tmp_path / "scene", "gamma22")
    message = r"transforms_train.json: encoding must be 'linear' or 'srgb', got 'gamma22'"
    with pytest.raises(DataError, match=message):
        load_nerv_point(scene)
    args = ["run", "--data", str(scene), "--data-kind", "nerv_point", "--plugins", "volsdf,relight"]
    assert run_cli([*args, "--out", str(tmp_path / "out"), "--max-steps", "1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and re.search(message, error[0]) and not (tmp_path / "out").exists()
