"""The pixelnerf plugin through the core: registration, configure, batches, training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from atlas_plugin_pixelnerf import ObjectBatches, PixelNeRFField, load_pixel_single

from atlas_core.api import BuildContext, PositionalEncoding, RunConfig
from atlas_core.testing import Trainer, configured, load_plugins, run_cli


def run_args(data: Path, out: Path, *extra: str, samples: bool = True) -> list[str]:
    """``atlas run`` on multi-object data with tiny settings (8 stratified samples)."""
    return ["run", "--data", str(data), "--data-kind", "pixel-single", "--plugins", "pixelnerf",
            "--out", str(out), "--max-steps", "3", "--eval-views", "2",
            "--set", "train.batch_rays=64", "--set", "eval.video_frames=2",
            "--set", "field.width=16", "--set", "field.encoder_width=4",
            *(["--set", "sampler.samples=8"] if samples else []), *extra]  # fmt: skip


def test_registers_field_and_data_kind(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("pixelnerf",))
    assert loaded.registry.get("fields", "pixelnerf").factory is PixelNeRFField
    assert loaded.registry.get("datasets", "pixel-single").factory is load_pixel_single


def test_configure_claims_the_field_unless_chosen() -> None:
    assert configured(["pixelnerf"]).field.name == "pixelnerf"
    assert configured(["pixelnerf"], {"field": "plain"}).field.name == "plain"


@pytest.mark.parametrize(
    ("settings", "frequencies"), [((), 6), ((("encoding.frequencies", 3),), 3)]
)
def test_pixelnerf_frequencies_unless_the_encoding_is_set(
    objects_data: Path, settings: tuple[tuple[str, object], ...], frequencies: int
) -> None:
    config = configured(["pixelnerf"], {"field.encoder_width": 2, **dict(settings)})
    context = BuildContext(config, load_plugins(config.plugins), load_pixel_single(objects_data))
    encoding = context.make_field().encoding
    assert isinstance(encoding, PositionalEncoding) and encoding.out_dim == 3 + 6 * frequencies


def test_object_batches(objects_data: Path) -> None:
    bank = load_pixel_single(objects_data).bank
    torch.manual_seed(0)
    batches = ObjectBatches(bank, sources=2, objects=3, device=torch.device("cpu"))
    for _ in range(5):
        views = batches.next()
        objects, view, sources = (views.extras[k] for k in ("object", "view", "sources"))
        assert len(views) == 3 * (4 - 2) and sources.shape == (6, 2)
        assert len(set(objects.tolist())) == 3 and not set(objects.tolist()) & {6, 7}
        for o in set(objects.tolist()):
            mine = objects == o
            assert len(set(map(tuple, sources[mine].tolist()))) == 1  # one source set per object
            used = set(sources[mine][0].tolist()) | set(view[mine].tolist())
            assert used == set(range(4))  # the targets are the object's other views
        assert torch.equal(views.images[0], bank.images[objects[0], view[0]])
    assert (
        ObjectBatches(bank, 1, 50, torch.device("cpu")).next().extras["object"].unique().numel()
        == 6
    )


@pytest.mark.slow
def test_short_training_generalises_to_held_out_objects(
    training_data: Path, tmp_path: Path
) -> None:
    """100 steps on 16 objects: the held-out objects, seen from one view, beat the untrained
    model by > 2 dB (measured: 10.2 -> 13.7 dB) and an all-background image (9.8 dB)."""
    config = RunConfig()
    config.plugins = ["pixelnerf"]
    config.data.path = str(training_data)
    settings = {"data.kind": "pixel-single", "device": "cpu", "train.lr": 3e-3,
                "train.lr_final": 3e-4, "train.max_steps": 100, "train.batch_rays": 256,
                "sampler.samples": 24, "eval.views": 0, "field.width": 32}  # fmt: skip
    for key, value in settings.items():
        config.set(key, value)
    trainer = Trainer(config, load_plugins(config.plugins), tmp_path / "run")
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    assert "sources" in trainer.step_views().extras  # the plugin's batches are used
    assert "sources" not in trainer.train_views.extras  # and nothing was assigned
    after = trainer.evaluate(write_images=False)["psnr"]
    test = trainer.scene.split("test").images.float() / 255
    white = 1 - test[..., 3:] * (1 - test[..., :3])
    background = float((-10 * torch.log10((white - 1).square().mean(dim=(1, 2, 3)))).mean())
    assert after > before + 2.0, (before, after)
    assert after > background + 2.0, (background, after)


def test_cli_run_with_every_option(objects_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    extra = ["--set", "pixelnerf.source_views=2", "--set", "pixelnerf.objects_per_batch=3",
             "--set", "field.blocks=3", "--set", "field.combine_at=1",
             "--set", "field.encoder_stages=1", "--set", "field.image_features=true"]  # fmt: skip
    assert run_cli(run_args(objects_data, out, *extra)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["views"] == 2 and metrics["protocol"]["data_kind"] == "pixel-single"
    assert (out / "video.mp4").stat().st_size > 0
    assert sorted(p.name for p in (out / "test").glob("*_pred.png")) == [
        "obj_006_r_1_pred.png",
        "obj_007_r_1_pred.png",
    ]
    assert run_cli(["eval", str(out)]) == 0  # the bank is rebuilt from the data, not saved


def test_batches_serve_only_the_pixelnerf_field(objects_data: Path, tmp_path: Path) -> None:
    config = configured(["pixelnerf"], {"field": "tiny", "field.width": 8, "sampler.samples": 4,
                        "train.max_steps": 1, "train.batch_rays": 16})  # fmt: skip
    config.data.path = str(objects_data)
    config.set("data.kind", "pixel-single")
    trainer = Trainer(config, load_plugins(config.plugins), tmp_path / "run")
    trainer.fit()
    assert trainer.step == 1 and len(trainer.train_views) == 6 * 4  # the plain train split


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "pixelnerf.source_views=0"], "pixelnerf.source_views must be >= 1"),
        (["--set", "pixelnerf.objects_per_batch=0"], "objects_per_batch must be >= 1"),
        (["--set", "pixelnerf.source_views=4"], "source_views=4 leaves no target view"),
        (["--set", "pixelnerf.views=2"], "option 'pixelnerf.views'"),
        (["--set", "field.blocks=0"], "blocks >= 1"),
    ],
)
def test_bad_options_exit_2(objects_data, tmp_path, capsys, extra, message) -> None:  # noqa: ANN001
    assert run_cli(run_args(objects_data, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_blender_scene_is_one_object(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    scene = load_pixel_single(atlas_scene)
    assert scene.bank is not None and scene.bank.images.shape[:2] == (1, 12)
    assert scene.bank.test_objects == [] and len(scene.split("test")) == 3
    assert scene.split("test").extras["object"].tolist() == [0, 0, 0]
    for kind in ("blender", "pixel-single"):  # the field builds the same bank on blender data
        out = tmp_path / kind
        args = run_args(atlas_scene, out, "--data-kind", kind, "--set", "eval.video_frames=0")
        assert run_cli(args) == 0
        assert json.loads((out / "metrics.json").read_text())["protocol"]["data_kind"] == kind


def test_resume_and_hierarchical_sampling(objects_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    hierarchical = ["--set", "sampler=hierarchical", "--set", "sampler.coarse=8",
                    "--set", "sampler.fine=8", "--set", "eval.video_frames=0"]  # fmt: skip
    args = run_args(objects_data, out, *hierarchical, samples=False)
    assert run_cli(args) == 0
    assert run_cli(["run", "--resume", "--out", str(out), "--max-steps", "5"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 5


def test_occupancy_sampling_is_refused(objects_data, tmp_path, capsys) -> None:  # noqa: ANN001
    args = run_args(objects_data, tmp_path / "run", "--set", "sampler=occupancy", samples=False)
    assert run_cli(args) == 2
    assert "has no density() method" in capsys.readouterr().err


def test_one_thread_run_does_not_crash(objects_data: Path, tmp_path: Path) -> None:
    """Under OMP_NUM_THREADS=1 the encoder's convolution backward must not abort (oneDNN's
    corrupted the heap there; the core turns it off on one CPU thread)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    code = "import sys; from atlas_core.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    done = subprocess.run(
        [sys.executable, "-c", code, *run_args(objects_data, out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert (out / "metrics.json").is_file()
