"""Fixtures of the appearance plugin's tests: a scene whose training photos have gains."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from atlas_core.api import synth

TRAIN_VIEWS = 12


@pytest.fixture(scope="session")
def gained_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24x24 generated scene whose training images are multiplied by per-image RGB
    gains in [0.55, 1.35] (``gains.npy``); test images are left alone."""
    out = tmp_path_factory.mktemp("appearance") / "scene"
    synth.write_scene(out, size=24, views={"train": TRAIN_VIEWS, "test": 2})
    gains = np.random.default_rng(1).uniform(0.55, 1.35, size=(TRAIN_VIEWS, 3))
    for index in range(TRAIN_VIEWS):
        path = out / "train" / f"r_{index}.png"
        image = iio.imread(path).astype(np.float64)
        image[..., :3] = np.clip(image[..., :3] * gains[index], 0, 255)
        iio.imwrite(path, image.round().astype(np.uint8))
    np.save(out / "gains.npy", gains)
    return out
