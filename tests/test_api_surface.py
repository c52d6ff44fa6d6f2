"""The public API's surface: what plugins may import, what every module exports, what is
documented, and the old import paths that still work for one release."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import warnings
from pathlib import Path

import pytest

import atlas_core
from atlas_core import _compat, api, hookspecs, testing
from atlas_core.testing import import_violations

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
DESIGN = ROOT / "docs" / "design.md"


def test_plugins_import_only_the_public_api() -> None:
    """No plugin, the template included, imports the core beyond its three public modules."""
    assert PLUGINS.is_dir()
    assert import_violations(PLUGINS) == []


def test_the_scan_catches_a_private_import(tmp_path: Path) -> None:
    """The scan reports deep modules, private names and plain module imports."""
    (tmp_path / "bad.py").write_text(
        "from atlas_core.nerf.fields import Field\n"
        "from atlas_core.api import Trainer\n"
        "import atlas_core.engine.trainer\n"
        "from atlas_core import pipeline\n"
        "from atlas_core.api import Field, hookimpl\n"
    )
    problems = import_violations(tmp_path)
    assert len(problems) == 4
    assert "bad.py:1: imports atlas_core.nerf.fields" in problems[0]
    assert "Trainer is not in atlas_core.api.__all__" in problems[1]
    assert "bad.py:3: imports atlas_core.engine.trainer" in problems[2]
    assert "pipeline is not in atlas_core.__all__" in problems[3]


def core_modules() -> list[str]:
    """Every module of the core package."""
    names = ["atlas_core"]
    for info in pkgutil.walk_packages(atlas_core.__path__, "atlas_core."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", core_modules())
def test_every_core_module_declares_all(name: str) -> None:
    """``__all__`` everywhere in the core, and each name in it exists."""
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("name", sorted(api.__all__))
def test_every_api_name_is_documented(name: str) -> None:
    """Each public name has a docstring (or is a documented constant) and is in the design."""
    value = getattr(api, name)
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value):
        assert (value.__doc__ or "").strip(), f"atlas_core.api.{name} has no docstring"
    assert f"`{name}`" in DESIGN.read_text(), f"docs/design.md does not list {name}"


def hook_names() -> list[str]:
    """Every hook specification."""
    return sorted(n for n in dir(hookspecs) if n.startswith("atlas_"))


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented(name: str) -> None:
    """Each hook spec has a docstring and a place in the design document."""
    assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
    assert f"`{name}" in DESIGN.read_text(), f"docs/design.md does not describe {name}"


def test_testing_names_are_documented() -> None:
    """The test kit's names are listed in the design document too."""
    text = DESIGN.read_text()
    assert [name for name in testing.__all__ if f"`{name}`" not in text] == []


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_old_import_paths_warn_and_still_work(old: str) -> None:
    """An 0.1 import path gives the same objects as the new place, with a DeprecationWarning."""
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert any("atlas_core.api" in str(w.message) for w in caught)
    for target in _compat.MOVED[old]:
        new = importlib.import_module(target)
        for name in new.__all__:
            assert getattr(module, name) is getattr(new, name)


def test_old_names_resolve_like_the_0_1_plugins_used_them() -> None:
    """A few imports of 0.1 plugins, through the old paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from atlas_core.fields import Field, mlp, trunc_exp
        from atlas_core.pipeline import BuildContext, Pipeline, plugin_options
        from atlas_core.render import VolumeRenderer, render_weights
    assert (Field, mlp, trunc_exp) == (api.Field, api.mlp, api.trunc_exp)
    assert (BuildContext, Pipeline, plugin_options) == (
        api.BuildContext,
        api.Pipeline,
        api.plugin_options,
    )
    assert (VolumeRenderer, render_weights) == (api.VolumeRenderer, api.render_weights)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        importlib.import_module("atlas_core.rays").nothing  # noqa: B018


def plugin_folders() -> list[Path]:
    """Every plugin distribution folder (the template too)."""
    return sorted(p.parent for p in PLUGINS.glob("*/pyproject.toml"))


@pytest.mark.parametrize("folder", plugin_folders(), ids=lambda p: p.name)
def test_plugins_pin_the_api_and_declare_mit(folder: Path) -> None:
    """Each plugin depends on ``nerf-atlas~=1.0``, is MIT, and its version is its package's."""
    import tomllib

    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert "nerf-atlas~=1.0" in project["dependencies"]
    assert not [
        dep for dep in project["dependencies"] if dep.replace(" ", "").startswith("torch==")
    ]
    package = folder / project["name"].replace("atlas-plugin-", "atlas_plugin_") / "__init__.py"
    tree = ast.parse(package.read_text())
    declared = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    ]
    assert declared in ([], [project["version"]])


def test_core_version_is_1_0() -> None:
    """The core's version is the API's major version, in the package and the metadata."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert atlas_core.__version__ == project["version"] and project["version"].startswith("1.")
