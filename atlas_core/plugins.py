"""The one PluginManager("atlas"): entry points, selection and the failure policy.

``atlas run --plugins a,b`` enables exactly those entry points of the group ``atlas``;
installed is not enabled. The core's own components come from built-in plugins that
use the same hooks and are always enabled.

Plugin warnings (a hook marked ``optionalhook=True`` that no spec defines, an entry point
whose distribution has no version) are printed as one line each on stderr, or raised as
PluginError when ``ATLAS_STRICT_PLUGINS=1``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from pluggy import HookImpl

from atlas_core import __version__, hookspecs
from atlas_core.errors import AtlasError, PluginError, PluginFailure, warn
from atlas_core.registry import KINDS, Registry

__all__ = [
    "ALWAYS_ON",
    "AtlasPlugins",
    "BUILTINS",
    "GROUP",
    "PluginInfo",
    "STRICT_ENV",
    "UNKNOWN_VERSION",
    "describe_installed",
    "installed",
    "load",
    "strict",
]

GROUP = "atlas"
BUILTINS = {"core": "atlas_core.builtin.core", "wandb": "atlas_core.builtin.wandb_logger"}
ALWAYS_ON = ("core",)
STRICT_ENV = "ATLAS_STRICT_PLUGINS"
UNKNOWN_VERSION = "?"


def strict() -> bool:
    """True when ``ATLAS_STRICT_PLUGINS`` asks for plugin warnings to be errors."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class PluginInfo:
    """What ``atlas plugins`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    components: dict[str, list[str]] = field(default_factory=dict)
    builtin: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "broken": self.error is not None,
            "error": self.error,
            "warnings": list(self.warnings),
            "components": self.components,
        }


def installed() -> dict[str, EntryPoint]:
    """Installed entry points of the ``atlas`` group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _entry_point_info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    version = (dist.version if dist else None) or UNKNOWN_VERSION
    info = PluginInfo(name=ep.name, distribution=dist.name if dist else "?", version=version)
    if version == UNKNOWN_VERSION:
        info.warnings.append(
            f"plugin '{ep.name}' ({ep.value}): its distribution has no version, "
            "so runs cannot record which one they used"
        )
    return info


def _import_entry_point(name: str, ep: EntryPoint) -> object:
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is reported by name
        raise PluginError(f"plugin '{name}' failed to import: {type(exc).__name__}: {exc}") from exc


class AtlasPlugins:
    """Enabled plugins, their pluggy manager and the registry they filled."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("atlas")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.infos: dict[str, PluginInfo] = {}

    @property
    def hook(self) -> Any:
        """The pluggy hook relay for lifecycle calls."""
        return self.pm.hook

    @property
    def versions(self) -> dict[str, str]:
        """Enabled plugin names and versions, in load order."""
        return {name: info.version for name, info in self.infos.items()}

    def add(self, name: str, module: object, info: PluginInfo) -> None:
        """Register one plugin object with pluggy and collect its components."""
        try:
            self.pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin '{name}' has an invalid hook: {exc}") from exc
        self.infos[name] = info
        for kind in KINDS:
            hook = f"atlas_register_{kind}"
            for impl in self.impls(hook):
                if impl.plugin_name == name:
                    register = self.registry.register_callback(kind, name)
                    self.invoke(impl, hook, register=register)
        info.components = self.registry.by_plugin(name)

    def impls(self, hook: str) -> list[HookImpl]:
        """A hook's implementations: ``tryfirst`` ones, the rest, then ``trylast`` ones,
        each group in plugin load order (as pluggy orders them)."""
        order = list(self.infos)
        found = getattr(self.pm.hook, hook).get_hookimpls()

        def rank(impl: HookImpl) -> tuple[int, int]:
            group = 0 if impl.tryfirst else 2 if impl.trylast else 1
            return group, order.index(impl.plugin_name)

        return sorted(found, key=rank)

    def invoke(self, impl: HookImpl, hook: str, **kwargs: Any) -> Any:
        """Call one implementation with the arguments it declares.

        An AtlasError passes through (a user error, one line); anything else is a bug in
        the plugin and becomes a PluginFailure naming the plugin and hook.
        """
        try:
            return impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except AtlasError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginFailure(impl.plugin_name, hook, exc) from exc

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call a hook's implementations in order; a failure names its plugin."""
        for impl in self.impls(hook):
            self.invoke(impl, hook, **kwargs)

    def results(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook's implementations; (plugin, result) for each that returned a value."""
        found = []
        for impl in self.impls(hook):
            result = self.invoke(impl, hook, **kwargs)
            if result is not None:
                found.append((impl.plugin_name, result))
        return found

    def check(self) -> None:
        """Fail loudly on hook implementations that match no spec (e.g. misspelt)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or "?"
            raise PluginError(f"plugin '{name}': {exc}; check the hook's spelling") from exc
        for name, plugin in self.pm.list_name_plugin():
            for caller in self.pm.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:
                        self._check_impl(name, caller.name, caller.spec is None, impl)

    def _check_impl(self, name: str, hook: str, unknown: bool, impl: HookImpl) -> None:
        if impl.hookwrapper or impl.wrapper:
            raise PluginError(
                f"plugin '{name}': {hook} is a hook wrapper; NeRF Atlas calls each "
                "implementation directly, so use a plain @hookimpl"
            )
        if unknown and impl.optionalhook and name in self.infos:
            self.infos[name].warnings.append(
                f"plugin '{name}' implements {hook} (optionalhook=True), which no hook "
                "spec defines, so it is never called"
            )

    @property
    def warnings(self) -> list[str]:
        """Warnings about the enabled plugins, in load order."""
        return [text for info in self.infos.values() for text in info.warnings]

    def report(self) -> None:
        """Print each warning as one line, or raise the first when strict."""
        if self.warnings and strict():
            raise PluginError(f"{self.warnings[0]} ({STRICT_ENV}=1)")
        for text in self.warnings:
            warn(text)


def _builtin(name: str) -> tuple[object, PluginInfo]:
    module = importlib.import_module(BUILTINS[name])
    info = PluginInfo(name, "nerf-atlas", __version__, builtin=True)
    return module, info


def load(
    names: Sequence[str] = (),
    extra: Iterable[tuple[str, object]] = (),
    builtins: Sequence[str] = (),
) -> AtlasPlugins:
    """Enable the core, the named installed plugins and ``extra`` in-process plugins."""
    plugins = AtlasPlugins()
    for name in (*ALWAYS_ON, *builtins):
        plugins.add(name, *_builtin(name))
    available = installed()
    for name in names:
        if name in plugins.infos:
            raise PluginError(f"plugin '{name}' is listed twice")
        if name not in available:
            raise PluginError(
                f"plugin '{name}' is not installed: atlas plugins install {name} "
                f"(pip install atlas-plugin-{name}; from a checkout, pip install ./plugins/{name})"
            )
        ep = available[name]
        plugins.add(name, _import_entry_point(name, ep), _entry_point_info(ep))
    for name, module in extra:
        plugins.add(name, module, PluginInfo(name, "(in-process)", "0"))
    plugins.check()
    plugins.report()
    return plugins


def describe_installed() -> list[PluginInfo]:
    """Every built-in and installed plugin with what it registers; broken ones marked."""
    infos = []
    for name in BUILTINS:
        plugins = AtlasPlugins()
        plugins.add(name, *_builtin(name))
        infos.append(plugins.infos[name])
    for name, ep in sorted(installed().items()):
        info = _entry_point_info(ep)
        try:
            plugins = AtlasPlugins()
            plugins.add(name, _import_entry_point(name, ep), info)
            plugins.check()
        except (PluginError, PluginFailure) as exc:
            info.error = str(exc)
        if info.warnings and info.error is None and strict():
            info.error = f"{info.warnings[0]} ({STRICT_ENV}=1)"
        infos.append(info)
    return infos
