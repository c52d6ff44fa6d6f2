"""Fixtures of the dnerf plugin's tests: a tiny dynamic scene."""

from __future__ import annotations

from pathlib import Path

import pytest
from atlas_plugin_dnerf.synth import write_dynamic_scene


@pytest.fixture(scope="session")
def dynamic_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20x20 moving scene: 12 train and 3 test views, times 0..1."""
    out = tmp_path_factory.mktemp("dnerf") / "scene"
    return write_dynamic_scene(out, size=20, views={"train": 12, "test": 3})
