"""plugins/_template installs on its own, registers its encoding and configures nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

from atlas_core import plugins
from atlas_core.build import configure
from atlas_core.config import SLOTS, RunConfig

TEMPLATE = Path(__file__).resolve().parents[1] / "plugins" / "_template"
CHECK = """
import atlas_plugin_template, sys
from atlas_core.plugins import load
assert atlas_plugin_template.__file__.startswith(sys.argv[1]), atlas_plugin_template.__file__
component = load(["template"]).registry.get("encodings", "template_scaled")
print(component.plugin, component.factory.__name__)
"""


def test_template_installs_and_registers(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    pip += ["--no-build-isolation", "--target", str(target), str(source)]
    subprocess.run(pip, check=True, capture_output=True, timeout=120)
    (dist,) = distributions(path=[str(target)])
    assert dist.metadata["Name"] == "atlas-plugin-template"
    assert dist.metadata["License-Expression"] == "MIT"
    (entry,) = [ep for ep in dist.entry_points if ep.group == plugins.GROUP]
    assert (entry.name, entry.value) == ("template", "atlas_plugin_template")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["template", "ScaledEncoding"]


def test_template_configures_no_slot() -> None:
    if "template" not in plugins.installed():
        pytest.skip("atlas-plugin-template is not installed here (make install installs it)")
    loaded = plugins.load(["template"])
    assert loaded.infos["template"].components == {"encodings": ["template_scaled"]}
    config = RunConfig()
    configure(config, loaded)
    assert all(getattr(config, slot).name == getattr(RunConfig(), slot).name for slot in SLOTS)
    assert config.losses == RunConfig().losses
