"""Fixtures of the dtu plugin's tests: a small generated scan."""

from __future__ import annotations

from pathlib import Path

import pytest
from atlas_plugin_dtu.synth import write_scene


@pytest.fixture(scope="session")
def dtu_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40x32 scan of 12 views in the IDR layout (read-only: copy it to damage it)."""
    return write_scene(tmp_path_factory.mktemp("dtu") / "scan", views=12, size=(40, 32))
