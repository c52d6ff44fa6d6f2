"""The dtu plugin's config choices for volsdf_grid on a scan: a longer warm-up, patch NCC,
darks weighed more in the colour loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from atlas_plugin_dtu import GRID_WARMUP_STEPS, LOSS_GAMMA, PHOTO_CONSISTENCY

from atlas_core.api import RunConfig
from atlas_core.testing import configured, requires_plugins


def on_scan(scan: Path, kind: str, settings: dict[str, Any]) -> RunConfig:
    """The config of ``--plugins dtu,volsdf`` on ``scan`` after the plugins adjusted it."""
    return configured(["dtu", "volsdf"], {"data.path": str(scan), "data.kind": kind, **settings})


@requires_plugins("volsdf")
def test_a_scan_gives_volsdf_grid_the_longer_warm_up(dtu_scan: Path) -> None:
    config = on_scan(dtu_scan, "dtu", {"field": "volsdf_grid"})
    assert config.field.options["warmup_steps"] == GRID_WARMUP_STEPS != 150
    assert config.losses["photo_consistency"] == PHOTO_CONSISTENCY > 0
    assert config.train.loss_gamma == LOSS_GAMMA != 1.0


@requires_plugins("volsdf")
@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("dtu", {"field": "volsdf_grid", "field.warmup_steps": 40}, 40),  # the user's kept
        ("blender", {"field": "volsdf_grid"}, None),  # not a scan
        ("dtu", {"field": "volsdf_hash"}, None),  # another field's own warm-up
    ],
)
def test_the_warm_up_is_left_alone_otherwise(
    dtu_scan: Path, kind: str, settings: dict[str, Any], expected: int | None
) -> None:
    config = on_scan(dtu_scan, kind, settings)
    assert config.field.options.get("warmup_steps") == expected


@requires_plugins("volsdf")
@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("dtu", {"field": "volsdf_grid", "losses.photo_consistency": 0.0}, 0.0),  # the user's
        ("blender", {"field": "volsdf_grid"}, None),  # not a scan
        ("dtu", {"field": "volsdf_hash"}, None),  # not measured there
    ],
)
def test_photo_consistency_is_left_alone_otherwise(
    dtu_scan: Path, kind: str, settings: dict[str, Any], expected: float | None
) -> None:
    config = on_scan(dtu_scan, kind, settings)
    assert config.losses.get("photo_consistency") == expected


@requires_plugins("volsdf")
@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("dtu", {"field": "volsdf_grid", "train.loss_gamma": 1.0}, 1.0),  # the user's
        ("blender", {"field": "volsdf_grid"}, 1.0),  # not a scan
        ("dtu", {"field": "volsdf_hash"}, 1.0),  # not measured there
    ],
)
def test_loss_gamma_is_left_alone_otherwise(
    dtu_scan: Path, kind: str, settings: dict[str, Any], expected: float
) -> None:
    config = on_scan(dtu_scan, kind, settings)
    assert config.train.loss_gamma == expected
