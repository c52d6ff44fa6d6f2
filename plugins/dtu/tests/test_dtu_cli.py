"""Through ``atlas run``: bad scans stop with one line naming the file (exit 2); short runs
with volsdf (and mip) train, with and without the mask loss."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from atlas_plugin_dtu import synth

from atlas_core.testing import requires_plugins, run_cli

QUICK = ["--max-steps", "20", "--eval-views", "1", "--set", "eval.video_frames=0",
         "--set", "train.batch_rays=128", "--set", "sampler.samples=16",
         "--set", "field.width=16", "--set", "encoding.frequencies=4"]  # fmt: skip
SMALL_SDF = ("--set", "field.features=16", "--set", "field.color_width=16")


def run(scan: Path, out: Path, plugins: str, *extra: str) -> int:
    """``atlas run`` on a scan with the dtu data kind."""
    args = ["run", "--data", str(scan), "--data-kind", "dtu", "--out", str(out)]
    return run_cli([*args, "--plugins", plugins, *QUICK, *extra])


def edit_cameras(scan: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Rewrite the scan's cameras.npz after ``change`` edits its arrays."""
    arrays = dict(np.load(scan / "cameras.npz"))
    change(arrays)
    np.savez(scan / "cameras.npz", **arrays)


def no_cameras(scan: Path) -> str:
    (scan / "cameras.npz").unlink()
    return "cameras.npz: file is missing"


def no_world_mat(scan: Path) -> str:
    edit_cameras(scan, lambda a: a.pop("world_mat_3"))
    return "cameras.npz: no world_mat_3 for image 000003.png"


def no_scale_mat(scan: Path) -> str:
    edit_cameras(scan, lambda a: a.pop("scale_mat_7"))
    return "cameras.npz: no scale_mat_7 for image 000007.png"


def singular_world_mat(scan: Path) -> str:
    def flatten(arrays: dict[str, np.ndarray]) -> None:
        arrays["world_mat_2"][:3, :3] = np.outer([1.0, 2.0, 3.0], [1.0, 0.5, 0.2])

    edit_cameras(scan, flatten)
    return "cameras.npz: world_mat_2 @ scale_mat_2: its left 3x3 block is not invertible"


def singular_scale_mat(scan: Path) -> str:
    edit_cameras(scan, lambda a: a.__setitem__("scale_mat_4", np.zeros((4, 4))))
    return "cameras.npz: scale_mat_4 is not invertible"


def skewed_camera(scan: Path) -> str:
    edit_cameras(scan, lambda a: a["world_mat_5"].__setitem__((0, 1), 40.0))
    return "cameras.npz: world_mat_5 has camera skew"


def extra_mask(scan: Path) -> str:
    shutil.copy(scan / "mask" / "000.png", scan / "mask" / "999.png")
    return "mask: 13 masks for 12 images in"


def bad_npz(scan: Path) -> str:
    (scan / "cameras.npz").write_bytes(b"not an archive")
    return "cameras.npz: not a readable .npz archive"


def no_images(scan: Path) -> str:
    shutil.rmtree(scan / "image")
    return "image: folder is missing"


CASES = [no_cameras, no_world_mat, no_scale_mat, singular_world_mat, singular_scale_mat,
         skewed_camera, extra_mask, bad_npz, no_images]  # fmt: skip


@pytest.mark.parametrize("damage", CASES, ids=[case.__name__ for case in CASES])
def test_bad_scan_exits_2_naming_the_file(
    damage: Callable[[Path], str], dtu_scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scan = shutil.copytree(dtu_scan, tmp_path / "scan")
    message = damage(scan)
    capsys.readouterr()
    assert run(scan, tmp_path / "out", "dtu") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"atlas: error: {scan}"), lines
    assert message in lines[0], lines
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_bad_option_exits_2(dtu_scan: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert run(dtu_scan, tmp_path / "out", "dtu", "--set", "data.test_every=1") == 2
    assert "data.test_every must be 0 (no test split) or >= 2" in capsys.readouterr().err


@requires_plugins("volsdf")
def test_mask_loss_without_masks_is_refused(dtu_scan: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    extra = ("--set", "losses.mask=0.1", "--set", "data.use_mask=false")
    assert run(dtu_scan, tmp_path / "out", "dtu,volsdf", *SMALL_SDF, *extra) == 2
    assert "plugin 'dtu': losses.mask needs the scan's masks" in capsys.readouterr().err


def metrics(out: Path) -> dict:
    """A finished run's metrics.json."""
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("plugins", "extra"),
    [pytest.param("dtu,volsdf", (*SMALL_SDF, "--set", "losses.mask=0.1"),
                  marks=requires_plugins("volsdf")),
     pytest.param("dtu,volsdf,mip", SMALL_SDF, marks=requires_plugins("volsdf", "mip")),
     ("dtu", ("--set", "data.use_mask=false", "--set", "data.downscale=2"))],
)  # fmt: skip
def test_short_runs_train(dtu_scan: Path, tmp_path: Path, plugins: str, extra: tuple) -> None:
    out = tmp_path / "run"
    assert run(dtu_scan, out, plugins, *extra) == 0
    result = metrics(out)
    assert result["steps"] == 20 and np.isfinite(result["test"]["psnr"])
    assert (out / "test").is_dir()
    config = (out / "config.toml").read_text()
    assert 'kind = "dtu"' in config
    if "losses.mask=0.1" in extra:
        assert "mask = 0.1" in config


def test_generator_command_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "gen"
    assert synth.main([str(out), "--views", "3", "--width", "12", "--height", "10"]) == 0
    assert sorted(p.name for p in (out / "image").iterdir()) == [
        "000000.png", "000001.png", "000002.png"]  # fmt: skip
    assert set(np.load(out / "cameras.npz").files) == {
        f"{kind}_mat_{i}" for kind in ("world", "scale") for i in range(3)}  # fmt: skip
    assert synth.main([str(out)]) == 2
    assert "already holds image, mask, cameras.npz" in capsys.readouterr().err
