"""Study files and the helpers their search spaces use."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_core.config import RunConfig
from atlas_core.errors import AtlasError, first_line
from atlas_core.plugins import installed

if TYPE_CHECKING:
    import optuna

__all__ = [
    "NO_PLUGINS",
    "Study",
    "choose_plugins",
    "installed_plugins",
    "read_study_file",
    "plugin_set_name",
    "set_param",
]

NO_PLUGINS = "none"


def installed_plugins() -> set[str]:
    """Names of the installed (not necessarily enabled) plugins."""
    return set(installed())


def plugin_set_name(plugins: Sequence[str]) -> str:
    """A plugin set as one categorical choice: ``mip+volsdf``, or ``none``."""
    return "+".join(plugins) or NO_PLUGINS


def choose_plugins(
    trial: optuna.Trial, config: RunConfig, sets: Sequence[Sequence[str]]
) -> tuple[str, ...]:
    """Suggest one of ``sets`` whose plugins are all installed and enable it.

    The choice is the categorical parameter ``plugins``; sets that need a missing plugin
    are left out, so a study runs with whatever is installed.
    """
    have = installed_plugins()
    usable = [tuple(s) for s in sets if set(s) <= have]
    if not usable:
        wanted = sorted({p for s in sets for p in s} - have)
        raise AtlasError(f"no plugin set of this study is installed (missing: {wanted})")
    names = [plugin_set_name(s) for s in usable]
    chosen = usable[names.index(trial.suggest_categorical("plugins", names))]
    config.plugins = list(chosen)
    return chosen


def set_param(config: RunConfig, key: str, value: Any) -> Any:
    """Write a suggested value into the config under a dotted key; returns the value."""
    config.set(key, value, source="study")
    return value


@dataclass
class Study:
    """A loaded study file."""

    path: Path
    space: Callable[[optuna.Trial, RunConfig], None]
    name: str
    base: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()

    def check_plugins(self) -> None:
        """A study that needs missing plugins stops before any trial starts."""
        missing = [p for p in self.requires if p not in installed_plugins()]
        if missing:
            hints = " ".join(f"./plugins/{p}" for p in missing)
            raise AtlasError(
                f"{self.path}: needs plugin(s) {', '.join(missing)}, not installed "
                f"(pip install -e {hints})"
            )


def read_study_file(path: str | Path) -> Study:
    """Import a study file: ``space`` is required; ``BASE``, ``REQUIRES``, ``NAME`` optional."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise AtlasError(f"{path}: study file not found (expected a .py file)")
    module_name = f"atlas_study_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AtlasError(f"{path}: cannot be imported as a study")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken study file is reported by path
        raise AtlasError(f"{path}: failed to import: {first_line(exc)}") from exc
    space = getattr(module, "space", None)
    if not callable(space):
        raise AtlasError(f"{path}: defines no space(trial, config) function")
    return Study(
        path=path,
        space=space,
        name=str(getattr(module, "NAME", path.stem)),
        base=dict(getattr(module, "BASE", {})),
        requires=tuple(getattr(module, "REQUIRES", ())),
    )
