"""``atlas run --logger wandb``: one offline W&B run with losses, PSNR, images and video."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from atlas_core.cli import main


def wandb_record(run_dir: Path, keys: tuple[bytes, ...], timeout: float = 30.0) -> bytes:
    """The run's transaction log once it holds ``keys`` (wandb-core writes it after finish)."""
    deadline = time.monotonic() + timeout
    while True:
        record = next(run_dir.glob("run-*.wandb")).read_bytes()
        if all(key in record for key in keys) or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


@pytest.mark.slow
def test_run_logs_offline(
    atlas_scene: Path, tmp_path: Path, quick_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run folder holds one offline run with the logged keys and media files."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_RUN_GROUP", "my-group")
    out = tmp_path / "run"
    argv = ["run", "--data", str(atlas_scene), "--out", str(out), "--logger", "wandb"]
    argv += [*quick_args, "--set", "train.log_every=5", "--set", "train.eval_every=10"]
    assert main(argv) == 0
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    keys = (b"my-group", b"train/loss", b"train/lr", b"eval/psnr", b"test/psnr", b"video")
    record = wandb_record(runs[0], keys)
    for key in keys:
        assert key in record, key
    assert b"plugin_versions" in record
    assert list(runs[0].glob("files/media/videos/*.mp4"))
    assert list(runs[0].glob("files/media/images/eval/*.png"))
