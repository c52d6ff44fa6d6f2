"""Pytest fixtures for plugin authors, loaded automatically with nerf-atlas installed.

``atlas_pm(plugin, ...)`` builds the core's plugin manager with in-process plugins
(modules, classes or objects carrying ``@hookimpl`` functions); ``atlas_scene`` is a
small generated NeRF-synthetic scene shared by a test session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "QUICK_SETTINGS",
    "atlas_pm",
    "atlas_scene",
    "break_kernel_builds",
    "configured",
    "plugin_name",
    "quick_trainer",
    "requires_plugins",
]


def break_kernel_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every C++ kernel build fail (no compiler) and forget the ones already loaded,
    so a test sees the warning and the PyTorch fallback."""
    import torch.utils.cpp_extension

    from atlas_core.nerf import native

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error building extension: no compiler")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", broken)
    monkeypatch.setattr(native, "_modules", {})


def plugin_name(plugin: Any, index: int) -> str:
    """A plugin's name: its ``name`` attribute, module name or class name."""
    name = getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
    return str(name or f"{type(plugin).__name__.lower()}{index}").rsplit(".", 1)[-1]


@pytest.fixture
def atlas_pm() -> Callable[..., Any]:
    """Factory: ``atlas_pm(*plugins, enable=())`` -> AtlasPlugins with the core loaded."""
    from atlas_core.plugins import load

    def make(*plugins: Any, enable: tuple[str, ...] = (), builtins: tuple[str, ...] = ()) -> Any:
        extra = [(plugin_name(p, i), p) for i, p in enumerate(plugins)]
        return load(enable, extra=extra, builtins=builtins)

    return make


@pytest.fixture(scope="session")
def atlas_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24x24 procedural scene (12 train, 2 val, 3 test views) in blender format."""
    from atlas_core.data.synth import write_scene

    out = tmp_path_factory.mktemp("atlas") / "scene"
    return write_scene(out, size=24, views={"train": 12, "val": 2, "test": 3})


QUICK_SETTINGS = {"train.batch_rays": 256, "sampler.samples": 8, "field.width": 16, "eval.views": 1}


def quick_trainer(data: Path, out: Path, **sets: Any) -> Any:
    """A Trainer of the core alone on ``data`` with small settings; ``sets`` override
    them, with ``__`` for the dot (``train__optimizer="sgd"``)."""
    from atlas_core.config import RunConfig
    from atlas_core.engine.trainer import Trainer
    from atlas_core.plugins import load

    config = RunConfig()
    config.data.path = str(data)
    overrides = {key.replace("__", "."): value for key, value in sets.items()}
    for key, value in {**QUICK_SETTINGS, **overrides}.items():
        config.set(key, value)
    return Trainer(config, load(), out)


def configured(plugins: list[str], settings: dict[str, Any] | None = None) -> Any:
    """A RunConfig with ``plugins`` enabled and ``settings`` set (dotted keys, as with
    ``--set``), after the plugins' ``atlas_configure`` adjusted it."""
    from atlas_core.build import configure
    from atlas_core.config import RunConfig
    from atlas_core.plugins import load

    config = RunConfig()
    config.plugins = list(plugins)
    for key, value in (settings or {}).items():
        config.set(key, value)
    configure(config, load(config.plugins))
    return config


def requires_plugins(*names: str) -> pytest.MarkDecorator:
    """Skip a test unless these plugins are installed: for a plugin's tests that compose it
    with another plugin, so the plugin's own suite also runs where it is installed alone."""
    from atlas_core.plugins import installed

    missing = sorted(set(names) - set(installed()))
    return pytest.mark.skipif(bool(missing), reason=f"plugins not installed: {', '.join(missing)}")
