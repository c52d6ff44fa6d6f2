"""The atlas command end to end on small generated scenes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest

from atlas_core import __version__, hookimpl
from atlas_core.cli import main
from atlas_core.engine.checkpoints import checkpoint_paths

pytestmark = pytest.mark.slow


def frames(path: Path) -> int:
    """Frames in a video file."""
    if path.suffix == ".gif":
        return iio.improps(path).shape[0]
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return reader.count_frames()
    finally:
        reader.close()


def run(args: list[str]) -> int:
    return main([str(a) for a in args])


def test_run_writes_every_output(atlas_scene, tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert run(["run", "--data", atlas_scene, "--out", out, *quick_args, "--save-every", 10]) == 0
    assert "test PSNR" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 30 and metrics["test"]["views"] == 1
    assert 0 < metrics["test"]["ssim"] <= 1 and metrics["test"]["psnr"] > 5
    assert metrics["rays_per_second"] > 0 and metrics["train_seconds"] > 0
    assert metrics["protocol"] == {
        "data": str(atlas_scene), "data_kind": "blender", "split": "test", "views": 1,
        "resolution": [24, 24], "background": "white",
    }  # fmt: skip
    assert metrics["plugins"] == {"core": __version__}
    names = sorted(p.name for p in (out / "test").iterdir())
    assert names == ["r_0_depth.png", "r_0_error.png", "r_0_gt.png", "r_0_pred.png"]
    pred, gt = (
        iio.imread(out / "test" / f"r_0_{kind}.png").astype(float) for kind in ("pred", "gt")
    )
    assert pred.shape == (24, 24, 3)
    error = iio.imread(out / "test" / "r_0_error.png").astype(float)[..., 0]
    expect = np.clip(np.abs(pred - gt).mean(axis=-1) * 4, 0, 255)  # 4x the mean abs error, red
    assert np.abs(error - expect).max() <= 4
    assert frames(out / "video.mp4") == 2
    # --save-every 10 and keep 3: steps 20, 30 remain (30 also saved at the end)
    assert [p.name for p in checkpoint_paths(out / "checkpoints")] == [
        "step-0000010.pt",
        "step-0000020.pt",
        "step-0000030.pt",
    ]
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["train"]["max_steps"] == 30 and saved["versions"] == {"core": __version__}
    # the saved config reruns
    again = tmp_path / "again"
    assert run(["run", "--config", out / "config.toml", "--out", again, "--max-steps", 2]) == 0
    assert json.loads((again / "metrics.json").read_text())["steps"] == 2


def test_resume_continues_to_more_steps(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert run(["run", "--data", atlas_scene, "--out", out, *quick_args]) == 0
    assert run(["run", "--resume", "--out", out, "--max-steps", 40, "--eval-views", 2]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 40 and metrics["test"]["views"] == 2
    assert run(["run", "--resume", "--out", out, "--data", atlas_scene]) == 2


def test_eval_and_render(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert run(["run", "--data", atlas_scene, "--out", out, *quick_args]) == 0
    before = json.loads((out / "metrics.json").read_text())
    assert run(["eval", out, "--eval-views", 3, "--device", "cpu"]) == 0
    after = json.loads((out / "metrics.json").read_text())
    assert after["test"]["views"] == 3 and after["steps"] == before["steps"]
    assert run(["render", out, "--path", "spiral", "--frames", 3]) == 0
    assert frames(out / "spiral.mp4") == 3
    gif = tmp_path / "turn.gif"
    assert run(["render", out, "--path", "turntable", "--frames", 4, "--output", gif]) == 0
    assert frames(gif) == 4
    assert run(["render", out, "--frames", 0]) == 2
    assert run(["render", out, "--output", tmp_path / "x.avi"]) == 2


def test_eval_scores_another_split_into_its_own_folder(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001, E501
    out = tmp_path / "run"
    assert run(["run", "--data", atlas_scene, "--out", out, *quick_args]) == 0
    before = (out / "metrics.json").read_bytes()
    assert run(["eval", out, "--split", "train", "--eval-views", 100]) == 0
    scores = json.loads((out / "eval-train" / "metrics.json").read_text())
    assert scores["views"] == 12  # all 12 training views (the test split has 3, val 2)
    assert len(list((out / "eval-train").glob("*_pred.png"))) == 12
    assert (out / "metrics.json").read_bytes() == before  # the test metrics stay
    assert run(["eval", out, "--split", "val", "--eval-views", 2]) == 0
    assert json.loads((out / "eval-val" / "metrics.json").read_text())["views"] == 2
    assert run(["eval", out, "--split", "test"]) == 0
    assert (out / "metrics.json").read_bytes() != before  # test still rewrites them


def test_eval_of_a_split_the_scene_lacks_exits_2(tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    from atlas_core.data.synth import write_scene

    scene = write_scene(tmp_path / "scene", size=16, views={"train": 4, "test": 2})
    out = tmp_path / "run"
    assert run(["run", "--data", scene, "--out", out, *quick_args, "--max-steps", 2]) == 0
    capsys.readouterr()
    assert run(["eval", out, "--split", "val"]) == 2
    assert "the scene has no 'val' split" in capsys.readouterr().err
    assert not (out / "eval-val").exists()


def test_time_budget_stops_training(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    args = ["run", "--data", atlas_scene, "--out", out, *quick_args]
    assert run([*args, "--max-steps", 100000, "--time-budget", 1.0]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1 <= metrics["steps"] < 100000 and 1.0 <= metrics["train_seconds"] < 5.0


def test_seed_makes_runs_repeatable(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    psnr = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / name
        assert run(["run", "--data", atlas_scene, "--out", out, *quick_args, "--seed", seed]) == 0
        psnr.append(json.loads((out / "metrics.json").read_text())["test"]["psnr"])
    assert psnr[0] == psnr[1] and psnr[0] != psnr[2]


def test_user_errors_exit_2_with_one_line(atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    cases = [
        (["--out", out], "already exists and is not empty"),
        (["--set", "train.max_step=3"], "did you mean 'train.max_steps'"),
        (["--set", "field.widht=3"], "did you mean 'field.width'"),
        (["--plugins", "nosuchplugin"], "pip install ./plugins/nosuchplugin"),
        (["--data-kind", "nokind"], "unknown dataset 'nokind'"),
        (["--device", "cuda"], "no CUDA device"),
    ]
    for extra, message in cases:
        fresh = ["--out", tmp_path / "fresh"] if "--out" not in extra else []
        code = run(["run", "--data", atlas_scene, *fresh, *extra, "--max-steps", 1])
        err = capsys.readouterr().err.strip()
        if extra == ["--device", "cuda"] and "CUDA" not in err and code == 0:
            continue  # a machine with a GPU
        assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert (out / "keep.txt").read_text() == "precious"
    assert not (tmp_path / "fresh").exists()
    assert run(["run", "--data", tmp_path / "missing", "--out", tmp_path / "x"]) == 2
    assert "data folder does not exist" in capsys.readouterr().err


def test_data_synth_options(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "scene"
    assert run(["data", "synth", out, "--size", 20, "--seed", 3, "--train-views", 5]) == 0
    meta = json.loads((out / "transforms_train.json").read_text())
    assert len(meta["frames"]) == 5
    assert iio.imread(out / "train" / "r_0.png").shape == (20, 20, 4)
    other = tmp_path / "other"
    assert run(["data", "synth", other, "--size", 20, "--seed", 4, "--train-views", 5]) == 0
    assert (out / "train" / "r_0.png").read_bytes() != (other / "train" / "r_0.png").read_bytes()
    assert run(["data", "synth", out]) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err


def test_data_synth_kind_from_a_plugin(tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    from importlib.metadata import EntryPoint

    from atlas_core import plugins

    eps = {"kinds": EntryPoint("kinds", f"{__name__}:KINDS", "atlas")}
    monkeypatch.setattr(plugins, "installed", lambda: eps)
    monkeypatch.setattr("atlas_core.cli.installed", lambda: eps)
    assert run(["data", "synth", tmp_path / "a", "--kind", "toy", "--size", 7, "--seed", 5]) == 0
    assert (tmp_path / "a" / "toy.txt").read_text() == "7 5"
    assert "data kind 'toy'" in capsys.readouterr().out
    assert run(["data", "synth", tmp_path / "b", "--kind", "toy", "--train-views", 3]) == 2
    assert "--train-views applies to --kind blender" in capsys.readouterr().err
    assert run(["data", "synth", tmp_path / "c", "--kind", "bare"]) == 2
    assert "data kind 'bare' ('kinds') has no generator" in capsys.readouterr().err
    assert run(["data", "synth", tmp_path / "d", "--kind", "nope"]) == 2
    assert "no installed plugin registers data kind 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()


def write_toy(out: Path, size: int, seed: int) -> Path:
    """A toy generator: records its arguments."""
    out.mkdir(parents=True)
    (out / "toy.txt").write_text(f"{size} {seed}")
    return out


class KindsPlugin:
    """Registers a data kind with a generator and one without."""

    @hookimpl
    def atlas_register_datasets(self, register) -> None:  # noqa: ANN001
        register("toy", lambda path: None, synth=write_toy)
        register("bare", lambda path: None)


KINDS = KindsPlugin()


def test_wandb_logger_offline(atlas_scene, tmp_path, quick_args, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "run"
    assert run(["run", "--data", atlas_scene, "--out", out, *quick_args, "--logger", "wandb"]) == 0
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert any(runs[0].glob("*.wandb")) or any(runs[0].glob("run-*.wandb"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["plugins"] == {"core": __version__, "wandb": __version__}


def test_console_script_runs(tmp_path) -> None:  # noqa: ANN001
    atlas = Path(sys.executable).with_name("atlas")
    result = subprocess.run(
        [str(atlas), "run", "--data", tmp_path / "none"], capture_output=True, text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("atlas: error:") and "Traceback" not in result.stderr
