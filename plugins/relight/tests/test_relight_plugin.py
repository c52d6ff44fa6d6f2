"""The plugin in runs: every option through the pipeline, composition, and recovery."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from atlas_plugin_relight.data import load_nerv_point
from atlas_plugin_relight.synth import write_point_scene

from atlas_core.api import ConfigError, PluginError, RunConfig, make_rays
from atlas_core.testing import (
    Trainer,
    build_pipeline,
    configure,
    load_plugins,
    requires_plugins,
    run_cli,
)

SMALL = {"field": "volsdf", "field.width": 32, "field.features": 16, "field.color_width": 16}


@pytest.fixture(scope="module")
def point_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 generated sphere, 24 train and 3 test views, one moving light each."""
    out = tmp_path_factory.mktemp("relight") / "scene"
    return write_point_scene(out, 16, {"train": 24, "test": 3})


def config_for(scene: Path, names: list[str], settings: dict[str, Any]) -> RunConfig:
    """A run config on ``scene`` with the given plugins and settings."""
    config = RunConfig()
    config.data.path, config.data.kind, config.plugins = str(scene), "nerv_point", names
    for key, value in {**SMALL, **settings}.items():
        config.set(key, value)
    return config


OPTIONS = [
    {"relight.intersect": "bisection"},
    {"relight.intersect": "secant", "relight.shadow": "hard"},
    {
        "relight.reflectance": ["diffuse", "blinn_phong", "ggx", "mlp", "sh", "fourier"],
        "relight.weights": [1.0, 1.0, 1.0, 0.5, 0.5, 0.5],
    },  # fmt: skip
    {"relight.light": "point", "relight.light_position": [0.0, 2.0, 3.0]},
    {"relight.light": "learned", "relight.shadow": "learned"},
    {"relight.integrator": "path", "relight.shadow": "hard", "relight.reflectance": ["ggx"]},
]


def dense(grad: torch.Tensor) -> torch.Tensor:
    """A gradient as a dense tensor (grid materials give sparse ones)."""
    return grad.to_dense() if grad.is_sparse else grad


@pytest.mark.parametrize(
    "settings", OPTIONS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items())[:60]
)
def test_each_option_renders_with_finite_gradients(point_scene: Path, settings: dict) -> None:
    torch.manual_seed(0)
    config = config_for(point_scene, ["volsdf", "relight"], settings)
    scene = load_nerv_point(point_scene)
    pipe = build_pipeline(config, load_plugins(config.plugins), scene)
    views = scene.splits["train"]
    index = torch.arange(64) % len(views)
    rows, cols = torch.randint(0, 16, (64,)), torch.randint(0, 16, (64,))
    rays = make_rays(views, index, rows, cols, scene)
    outputs, field_outputs = pipe(rays)
    assert outputs["rgb"].shape == (64, 3) and bool(torch.isfinite(outputs["rgb"]).all())
    assert 0 < float(outputs["acc"].detach().mean()) <= 1
    total, terms = pipe.loss(rays, outputs, field_outputs)
    assert set(terms) == {"rgb_l2", "eikonal", "relight_mask"}
    total.backward()
    grads = [dense(p.grad) for p in pipe.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    material = pipe.renderer.material.parameters()
    assert any(float(dense(p.grad).abs().sum()) > 0 for p in material)
    assert any(float(p.grad.abs().sum()) > 0 for p in pipe.field.sdf_network.parameters())
    pipe.eval()
    image = pipe.render(rays, chunk=32)
    assert image["rgb"].shape == (64, 3) and bool(torch.isfinite(image["rgb"]).all())


@pytest.mark.parametrize("learn", [True, False])
def test_learned_gain_scales_every_light(point_scene: Path, learn: bool) -> None:
    torch.manual_seed(0)
    config = config_for(point_scene, ["volsdf", "relight"], {"relight.learn_gain": learn})
    scene = load_nerv_point(point_scene)
    pipe = build_pipeline(config, load_plugins(config.plugins), scene)
    gain = pipe.renderer.gain.log_gain
    assert gain.requires_grad is learn
    views = scene.splits["train"]
    rays = make_rays(views, torch.zeros(64, dtype=torch.long), torch.arange(64) // 8 + 4,
                     torch.arange(64) % 8 + 4, scene)  # fmt: skip
    outputs, _ = pipe(rays)
    hit = outputs["relight_hit"][:, 0] > 0
    assert bool(hit.any())
    with torch.no_grad():
        gain.fill_(math.log(2.0))
    brighter, _ = pipe(rays)
    lit = outputs["rgb"][hit]
    assert torch.allclose(brighter["rgb"][hit], 2 * lit, atol=1e-5)
    if learn:
        brighter["rgb"].sum().backward()
        assert gain.grad is not None and float(gain.grad.abs().sum()) > 0


def test_training_recovers_the_generated_scene(point_scene: Path, tmp_path: Path) -> None:
    # on the CPU, so the seeded run is the same everywhere (26.2 dB; CUDA kernels gave 23-24)
    settings = {"train.max_steps": 300, "train.batch_rays": 512, "train.lr": 1e-3,
                "train.lr_final": 2e-4, "train.log_every": 50, "train.save_every": 1000,
                "eval.views": 0, "eval.video_frames": 0, "device": "cpu",
                "relight.shadow": "none", "relight.encoding": "positional"}  # fmt: skip
    torch.manual_seed(0)
    config = config_for(point_scene, ["volsdf", "relight"], settings)
    trainer = Trainer(config, load_plugins(config.plugins), tmp_path / "run")
    untrained = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    trained = trainer.evaluate(write_images=False)["psnr"]
    print(f"relight recovery: untrained {untrained:.2f} dB, trained {trained:.2f} dB")
    assert trained > 23.0 and trained > untrained + 10.0, (untrained, trained)


@requires_plugins("dnerf")
def test_without_volsdf_the_run_stops_naming_the_plugins(
    point_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["run", "--data", str(point_scene), "--data-kind", "nerv_point", "--plugins", "relight"]
    assert run_cli([*args, "--out", str(tmp_path / "a"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("atlas: error: plugin 'relight'") and "'volsdf' field" in err
    config = RunConfig()
    config.data.path, config.data.kind = str(point_scene), "nerv_point"
    config.plugins = ["dnerf", "relight"]
    with pytest.raises(PluginError, match="enabled plugins are 'dnerf', 'relight'"):
        configure(config, load_plugins(config.plugins))


@requires_plugins("mip")
def test_mip_clashes_on_the_sampler_by_name(point_scene: Path) -> None:
    config = config_for(point_scene, ["volsdf", "mip", "relight"], {})
    scene = load_nerv_point(point_scene)
    with pytest.raises(PluginError, match="'mip' and 'relight' both choose the sampler"):
        build_pipeline(config, load_plugins(config.plugins), scene)


def test_a_field_without_sdf_is_named(point_scene: Path) -> None:
    config = config_for(point_scene, ["relight"], {"field": "tiny"})
    config.field.options.clear()
    scene = load_nerv_point(point_scene)
    with pytest.raises(ConfigError, match="needs a field with an SDF, but field 'tiny' has none"):
        build_pipeline(config, load_plugins(config.plugins), scene)


@requires_plugins("dnerf")
def test_a_wrapped_field_is_named(point_scene: Path) -> None:
    config = config_for(point_scene, ["volsdf", "dnerf", "relight"], {})
    scene = load_nerv_point(point_scene)
    with pytest.raises(ConfigError, match="field is wrapped in .* e.g. dnerf"):
        build_pipeline(config, load_plugins(config.plugins), scene)


def test_configure_claims_sampler_renderer_and_mask_term(point_scene: Path) -> None:
    config = config_for(point_scene, ["volsdf", "relight"], {"losses.relight_mask": 0.5})
    configure(config, load_plugins(config.plugins))
    assert (config.field.name, config.sampler.name, config.renderer.name) == (
        "volsdf", "surface", "relight")  # fmt: skip
    assert config.losses["relight_mask"] == 0.5 and "eikonal" in config.losses
    with pytest.raises(ConfigError, match="relight.integrator"):
        bad = config_for(point_scene, ["volsdf", "relight"], {"relight.integrator": "bidir"})
        configure(bad, load_plugins(bad.plugins))


@pytest.mark.parametrize("field", ["volsdf_grid", "volsdf_hash"])
def test_on_an_sdf_grid_the_warm_up_is_not_carved(point_scene: Path, field: str) -> None:
    config = config_for(point_scene, ["volsdf", "relight"], {"field": field})
    configure(config, load_plugins(config.plugins))
    assert config.renderer.name == "relight_volume"
    assert config.field.options["carve_views"] == 0
    chosen = config_for(point_scene, ["volsdf", "relight"],
                        {"field": field, "field.carve_views": 2})  # fmt: skip
    configure(chosen, load_plugins(chosen.plugins))
    assert chosen.field.options["carve_views"] == 2


def test_on_the_sdf_grid_the_warm_up_converts_at_a_higher_opacity_unblurred(
    point_scene: Path,
) -> None:
    config = config_for(point_scene, ["volsdf", "relight"], {"field": "volsdf_grid"})
    configure(config, load_plugins(config.plugins))
    assert config.field.options["opacity"] == 0.35 and config.field.options["opacity_blur"] == 0
    assert config.field.options["min_component"] == 0.004
    hashed = config_for(point_scene, ["volsdf", "relight"], {"field": "volsdf_hash"})
    configure(hashed, load_plugins(hashed.plugins))
    assert "opacity" not in hashed.field.options  # its teacher keeps volsdf's conversion
    chosen = config_for(point_scene, ["volsdf", "relight"],
                        {"field": "volsdf_grid", "field.opacity": 0.2})  # fmt: skip
    configure(chosen, load_plugins(chosen.plugins))
    assert chosen.field.options["opacity"] == 0.2


def test_test_views_are_supersampled_unless_chosen(point_scene: Path) -> None:
    config = config_for(point_scene, ["volsdf", "relight"], {"field": "volsdf_grid"})
    configure(config, load_plugins(config.plugins))
    assert config.eval.supersample == 0  # auto: 2 x 2 rays where the images are antialiased
    chosen = config_for(point_scene, ["volsdf", "relight"],
                        {"field": "volsdf_grid", "eval.supersample": 1})  # fmt: skip
    configure(chosen, load_plugins(chosen.plugins))
    assert chosen.eval.supersample == 1
    record = {**chosen.to_dict(), "versions": {"atlas-core": "0"}}  # a run's config.toml
    again = RunConfig.from_dict(record)
    configure(again, load_plugins(again.plugins))
    assert again.eval.supersample == 1
