"""Fixtures of the pixelnerf plugin's tests: small generated multi-object data."""

from __future__ import annotations

from pathlib import Path

import pytest
from atlas_plugin_pixelnerf.synth import write_objects


@pytest.fixture(scope="session")
def objects_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 training and 2 held-out objects, 4 views each, 16x16 pixels."""
    out = tmp_path_factory.mktemp("pixelnerf") / "objects"
    return write_objects(out, objects=6, test_objects=2, views=4, size=16, seed=1)


@pytest.fixture(scope="session")
def training_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training and 2 held-out objects, 6 views each, 24x24 pixels."""
    out = tmp_path_factory.mktemp("pixelnerf") / "training"
    return write_objects(out, objects=16, test_objects=2, views=6, size=24, seed=0)
