"""Layout detection, data-kind options and dataset contracts for the real-capture kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_data_real import NS_W, W, write_colmap, write_llff, write_nerfstudio

from atlas_core.cli import main
from atlas_core.data.layout import detect_kind
from atlas_core.errors import DataError
from atlas_core.plugins import load
from atlas_core.testing.contracts import DatasetContract


def test_detection_of_every_layout(tmp_path: Path, atlas_scene: Path) -> None:
    write_llff(tmp_path / "llff")
    write_colmap(tmp_path / "colmap", binary=True)
    write_nerfstudio(tmp_path / "ns")
    assert detect_kind(tmp_path / "llff")[0] == "llff"
    assert detect_kind(tmp_path / "colmap") == ("colmap", "found a COLMAP model in sparse/0/")
    assert detect_kind(tmp_path / "ns")[0] == "nerfstudio"
    assert detect_kind(atlas_scene) == ("blender", "found transforms_train.json")
    write_llff(tmp_path / "colmap")  # both: poses_bounds.npy wins, the other is named
    kind, why = detect_kind(tmp_path / "colmap")
    assert kind == "llff" and "also colmap" in why
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no known data layout.*--data-kind"):
        detect_kind(tmp_path / "empty")


def test_plugins_claim_layouts_through_the_registry(tmp_path: Path, atlas_scene: Path) -> None:
    """dnerf claims blender folders whose frames carry a time, only when enabled."""
    dynamic = tmp_path / "dyn"
    dynamic.mkdir()
    for split in ("train", "test"):
        meta = json.loads((atlas_scene / f"transforms_{split}.json").read_text())
        for i, frame in enumerate(meta["frames"]):
            frame["time"] = i / len(meta["frames"])
        (dynamic / f"transforms_{split}.json").write_text(json.dumps(meta))
    assert detect_kind(dynamic, load([]).registry)[0] == "blender"
    assert detect_kind(dynamic, load(["dnerf"]).registry)[0] == "dnerf"
    assert detect_kind(atlas_scene, load(["dnerf"]).registry)[0] == "blender"


def test_run_detects_kind_and_explicit_blender_keeps_the_hint(
    tmp_path: Path, quick_args, capsys
) -> None:  # noqa: ANN001
    write_llff(tmp_path / "fern")
    out = tmp_path / "r"
    args = ["run", "--data", str(tmp_path / "fern"), "--out", str(out), *quick_args]
    assert main(args) == 0
    assert "atlas: data kind 'llff' (found poses_bounds.npy)" in capsys.readouterr().out
    assert 'kind = "llff"' in (out / "config.toml").read_text()
    args = [
        "run",
        "--data",
        str(tmp_path / "fern"),
        "--out",
        str(tmp_path / "x"),
        "--data-kind",
        "blender",
    ]
    assert main(args) == 2
    assert "looks like an LLFF scene (poses_bounds.npy), not a blender" in capsys.readouterr().err
    np.save(tmp_path / "fern" / "poses_bounds.npy", np.zeros((3, 4)))
    assert main(["run", "--data", str(tmp_path / "fern"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "poses_bounds.npy: expected shape (N, 17)" in err[0]


@pytest.mark.parametrize("kind", ["llff", "colmap", "nerfstudio"])
def test_options_through_the_config(tmp_path: Path, kind: str) -> None:
    """--set data.test_every and data.downscale reach each kind's loader."""
    from atlas_core.config import RunConfig
    from atlas_core.engine.trainer import load_scene

    writers = {"llff": write_llff, "colmap": write_colmap, "nerfstudio": write_nerfstudio}
    writers[kind](tmp_path / "s")
    config = RunConfig()
    config.data.path = str(tmp_path / "s")
    config.set("data.test_every", 2)
    config.set("data.downscale", 2)
    scene = load_scene(config, load([]))
    assert config.data.kind == kind
    total = sum(len(v) for v in scene.splits.values())
    assert len(scene.splits["test"]) == (total + 1) // 2
    assert scene.splits["train"].width == (NS_W if kind == "nerfstudio" else W) // 2


class TestLLFFContract(DatasetContract):
    name = "llff"
    options = {"test_every": 4}

    @pytest.fixture
    def contract_data(self, tmp_path: Path) -> Path:
        write_llff(tmp_path / "s")
        return tmp_path / "s"


class TestColmapContract(DatasetContract):
    name = "colmap"

    @pytest.fixture
    def contract_data(self, tmp_path: Path) -> Path:
        write_colmap(tmp_path / "s", binary=True)
        return tmp_path / "s"


class TestNerfstudioContract(DatasetContract):
    name = "nerfstudio"
    options = {"downscale": 2}

    @pytest.fixture
    def contract_data(self, tmp_path: Path) -> Path:
        write_nerfstudio(tmp_path / "s")
        return tmp_path / "s"
