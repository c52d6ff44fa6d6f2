"""Installing plugins by name: `atlas plugins install`, and wheels in a fresh venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from atlas_core.cli import main
from atlas_core.commands import install as installer
from atlas_core.errors import AtlasError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("spec", "requirement"),
    [
        ("dnerf", "atlas-plugin-dnerf"),
        ("dnerf==1.0.0", "atlas-plugin-dnerf==1.0.0"),
        ("volsdf[extra]>=1.0", "atlas-plugin-volsdf[extra]>=1.0"),
        ("atlas-plugin-mip", "atlas-plugin-mip"),
        ("atlas_plugin_mip", "atlas_plugin_mip"),
        ("nerf-atlas", "nerf-atlas"),
        ("./plugins/voxel", "./plugins/voxel"),
        ("https://example.org/x.whl", "https://example.org/x.whl"),
    ],
)
def test_short_names_map_to_distributions(spec: str, requirement: str) -> None:
    """A plugin's short name is its distribution's; full names, paths and URLs pass."""
    assert installer.distribution(spec) == requirement


@pytest.mark.parametrize("spec", ["", "  ", "bad name", "-e"])
def test_bad_names_are_refused(spec: str) -> None:
    """Something that is neither a name nor a pip spec is a user error."""
    with pytest.raises(AtlasError, match="atlas plugins install"):
        installer.distribution(spec)


def test_install_runs_pip_with_every_option(monkeypatch, capsys) -> None:  # noqa: ANN001
    """--find-links (repeatable), --index-url and --upgrade reach this interpreter's pip."""
    seen: list[list[str]] = []

    def fake_run(command: list[str], check: bool) -> subprocess.CompletedProcess:
        seen.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(installer.subprocess, "run", fake_run)
    args = ["plugins", "install", "dnerf", "voxel", "--find-links", "dist", "--find-links",
            "/wheels", "--index-url", "https://mirror.example/simple", "--upgrade"]  # fmt: skip
    assert main(args) == 0
    assert seen == [
        [sys.executable, "-m", "pip", "install", "--find-links", "dist", "--find-links",
         "/wheels", "--index-url", "https://mirror.example/simple", "--upgrade",
         "atlas-plugin-dnerf", "atlas-plugin-voxel"]
    ]  # fmt: skip
    assert "installed atlas-plugin-dnerf, atlas-plugin-voxel" in capsys.readouterr().out
    assert main(["plugins", "install", "mip"]) == 0
    assert seen[-1] == [sys.executable, "-m", "pip", "install", "atlas-plugin-mip"]


def test_a_pip_failure_is_one_line(monkeypatch, capsys) -> None:  # noqa: ANN001
    """pip's exit status is reported with the distribution, exit code 2."""
    monkeypatch.setattr(
        installer.subprocess, "run", lambda command, check: subprocess.CompletedProcess(command, 1)
    )
    assert main(["plugins", "install", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "atlas: error: pip could not install atlas-plugin-nosuch (exit 1); see above"


def venv_python(folder: Path) -> Path:
    """The interpreter of a venv."""
    return folder / "bin" / "python"


def call(*args: object, cwd: Path | None = None, timeout: int = 600) -> str:
    """Run a command; fail the test with its output when it fails."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.mark.slow
def test_wheels_install_a_plugin_by_name_in_a_fresh_venv(tmp_path: Path) -> None:
    """`make dist`'s wheels: `pip install --find-links dist atlas-plugin-dnerf` brings the
    core; `atlas plugins install voxel` adds one by its short name; a dnerf run works."""
    dist = tmp_path / "dist"
    folders = [ROOT, ROOT / "plugins" / "dnerf", ROOT / "plugins" / "voxel"]
    for folder in folders:  # setuptools builds in the tree: no stale copies in the wheels
        shutil.rmtree(folder / "build", ignore_errors=True)
    call(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", dist, *folders, cwd=tmp_path)  # fmt: skip
    wheels = sorted(path.name for path in dist.glob("*.whl"))
    assert [name.split("-")[0] for name in wheels] == [
        "atlas_plugin_dnerf", "atlas_plugin_voxel", "nerf_atlas"
    ]  # fmt: skip
    with zipfile.ZipFile(next(dist.glob("nerf_atlas-*.whl"))) as wheel:
        names = wheel.namelist()
    assert "atlas_core/api.py" in names and not any(n.startswith("plugins/") for n in names)
    assert "atlas_core/train.py" not in names  # no stale module of an earlier build

    env = tmp_path / "venv"
    call(sys.executable, "-m", "venv", env)
    python = venv_python(env)
    call(python, "-m", "pip", "install", "--quiet", "torch==2.13.0")
    call(python, "-m", "pip", "install", "--quiet", "--find-links", dist, "atlas-plugin-dnerf")
    shown = call(python, "-m", "pip", "show", "--files", "nerf-atlas", "atlas-plugin-dnerf")
    assert "Version: 1.0.0" in shown and "Editable project location" not in shown
    atlas = env / "bin" / "atlas"
    call(atlas, "plugins", "install", "voxel", "--find-links", dist)
    listed = {p["name"]: p for p in json.loads(call(atlas, "plugins", "--json"))}
    assert listed["dnerf"]["distribution"] == "atlas-plugin-dnerf" and not listed["dnerf"]["broken"]
    assert (
        listed["voxel"]["version"] == "1.0.0" and "voxel" in listed["voxel"]["components"]["fields"]
    )
    location = call(python, "-c", "import atlas_core, atlas_plugin_dnerf as d; print(d.__file__)")
    assert str(env) in location  # from the wheel, not this checkout

    scene = tmp_path / "scene"
    call(atlas, "data", "synth", scene, "--kind", "dnerf", "--size", "16")
    out = tmp_path / "run"
    call(atlas, "run", "--data", scene, "--data-kind", "dnerf", "--plugins", "dnerf",
         "--max-steps", "3", "--eval-views", "1", "--set", "eval.video_frames=0",
         "--set", "train.batch_rays=64", "--set", "sampler.samples=8", "--out", out)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["plugins"]["dnerf"] == "1.0.0"
