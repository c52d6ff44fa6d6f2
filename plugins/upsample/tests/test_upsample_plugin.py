"""The upsample plugin: shapes, training on crops, options, errors, composition with ngp."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_upsample import FeatureField, UpsampleCNN, UpsampleRenderer, ViewUpsampler

from atlas_core.api import RunConfig, crop_shape
from atlas_core.testing import Trainer, load_plugins, requires_plugins, run_cli

QUICK = {"train.batch_rays": 128, "sampler.samples": 8, "field.width": 16, "eval.views": 1}


def trainer_for(
    data: Path, out: Path, plugins: tuple[str, ...] = ("upsample",), **sets: object
) -> Trainer:
    config = RunConfig(plugins=list(plugins))
    config.data.path = str(data)
    quick = {k: v for k, v in QUICK.items() if "ngp" not in plugins or k != "field.width"}
    for key, value in {**quick, "train.crop_size": 8, **sets}.items():
        config.set(key.replace("__", "."), value)
    return Trainer(config, load_plugins(plugins), out)


def test_cnn_shapes_and_identity_start() -> None:
    cnn = UpsampleCNN(channels=11, scale=3, width=8, blocks=1)
    images = torch.rand(2, 11, 5, 4)
    out = cnn(images)
    assert out.shape == (2, 3, 15, 12)
    bilinear = torch.nn.functional.interpolate(images[:, :3], scale_factor=3, mode="bilinear")
    assert torch.allclose(out, bilinear)  # zero-initialised last layer: a plain upsampling


def test_configure_and_crop_batch(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = trainer_for(atlas_scene, tmp_path)
    pipeline = trainer.pipeline
    assert isinstance(pipeline.renderer, UpsampleRenderer) and isinstance(
        pipeline.field, FeatureField
    )
    assert trainer.config.train.batch == "crops" and "upsample_rgb" in trainer.config.losses
    rays = trainer.sample_batch()
    assert crop_shape(rays) == (8, 4, 4)  # 128 rays: 8 crops of 8x8 pixels, 4x4 rays each
    assert rays.extras["block_rgba"].shape == (128, 4, 4)
    outputs, field_outputs = pipeline(rays)
    assert field_outputs["features"].shape[1] == 8
    assert outputs["features"].shape == (128, 11)
    assert outputs["upsampled_rgb"].shape == (8 * 64, 3)
    view = trainer.view_pipeline()
    assert isinstance(view, ViewUpsampler)
    from atlas_core.api import image_rays

    out = view.render(image_rays(trainer.scene.split("test"), 0, trainer.scene), 100)
    assert out["rgb"].shape == out["target_rgb"].shape == (24 * 24, 3)
    assert out["depth"].shape == out["acc"].shape == (24 * 24, 1)


def test_training_on_crops_improves_psnr(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = trainer_for(
        atlas_scene, tmp_path, train__max_steps=150, train__lr=1e-2, train__batch_rays=256,
        sampler__samples=16, field__width=32,
    )  # fmt: skip
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    print(f"upsample x2: {before:.2f} -> {after:.2f} dB")
    assert after > before + 3.0, (before, after)
    assert trainer.history[-1]["upsample_rgb"] < trainer.history[0]["upsample_rgb"]


def test_options_change_the_model(atlas_scene: Path, tmp_path: Path) -> None:
    base = trainer_for(atlas_scene, tmp_path / "a")
    other = trainer_for(
        atlas_scene, tmp_path / "b", **{"upsample.scale": 4, "upsample.features": 0,
                                        "upsample.width": 4, "upsample.blocks": 0},
    )  # fmt: skip
    assert base.pipeline.renderer.ray_stride == 2 and other.pipeline.renderer.ray_stride == 4
    rays = other.sample_batch()
    assert crop_shape(rays) == (32, 2, 2) and rays.extras["block_rgba"].shape[1] == 16
    outputs, field_outputs = other.pipeline(rays)
    assert "features" not in field_outputs and outputs["features"].shape[1] == 3
    count = sum(p.numel() for p in other.pipeline.renderer.cnn.parameters())
    assert count < sum(p.numel() for p in base.pipeline.renderer.cnn.parameters())
    assert len(other.pipeline.renderer.cnn.body) == 4  # conv, relu, conv, shuffle


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["train.batch=rays"], "set train.batch=crops or views"),
        (
            ["train.crop_size=9"],
            "train.crop_size=9 must be a multiple of the renderer's ray stride 2",
        ),
        (["upsample.scale=0"], "need scale >= 1"),
        (["upsample.depth=2"], "upsample.depth"),
    ],
)
def test_bad_settings_exit_2(
    atlas_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture, sets: list[str], message: str
) -> None:
    argv = [
        "run",
        "--data",
        str(atlas_scene),
        "--out",
        str(tmp_path / "r"),
        "--plugins",
        "upsample",
    ]
    argv += ["--max-steps", "2", *[a for s in sets for a in ("--set", s)]]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@requires_plugins("ngp")
def test_composes_with_ngp(atlas_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["run", "--data", str(atlas_scene), "--out", str(out), "--plugins", "ngp,upsample",
            "--max-steps", "10", "--eval-views", "1", "--set", "train.batch_rays=256",
            "--set", "train.crop_size=8", "--set", "eval.video_frames=2",
            "--set", "field.log2_table=12", "--set", "field.levels=4"]  # fmt: skip
    assert run_cli(argv) == 0
    assert (out / "metrics.json").exists() and (out / "video.mp4").exists()
    trainer = trainer_for(atlas_scene, tmp_path / "t", plugins=("ngp", "upsample"),
                          **{"field.log2_table": 12, "field.levels": 4})  # fmt: skip
    assert trainer.config.field.name == "ngp" and trainer.config.renderer.name == "upsample"
    assert isinstance(trainer.pipeline.field, FeatureField)
    assert type(trainer.pipeline.field.inner).__name__ != "FeatureField"
