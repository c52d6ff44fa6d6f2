"""Named components per kind, and which plugin registered each."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atlas_core.errors import ConfigError, PluginError

__all__ = ["Component", "KINDS", "Registry", "unknown_choice"]

KINDS = ("fields", "encodings", "samplers", "renderers", "losses", "datasets")


@dataclass(frozen=True)
class Component:
    """A registered factory with its kind, name, description and owning plugin."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str
    synth: Callable[..., Any] | None = None  # data kinds: writes a small generated scene
    detect: Callable[..., Any] | None = None  # data kinds: detect(folder) -> reason or None


class Registry:
    """Components registered by plugins, keyed by kind then name."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        """Return the ``register(name, factory, description=...)`` callback for a plugin."""

        def register(
            name: str,
            factory: Callable[..., Any],
            description: str = "",
            synth: Callable[..., Any] | None = None,
            detect: Callable[..., Any] | None = None,
        ) -> None:
            self.add(Component(kind, name, factory, description, plugin, synth, detect))

        return register

    def add(self, component: Component) -> None:
        """Add a component; a name already taken raises a PluginError naming both."""
        existing = self._items[component.kind].get(component.name)
        if existing is not None:
            raise PluginError(
                f"{component.kind[:-1]} '{component.name}' is registered by both "
                f"'{existing.plugin}' and '{component.plugin}'; enable only one of them"
            )
        self._items[component.kind][component.name] = component

    def get(self, kind: str, name: str) -> Component:
        """Look up a component; an unknown name raises a ConfigError with the choices."""
        items = self._items[kind]
        if name not in items:
            raise ConfigError(unknown_choice(f"{kind[:-1]} '{name}'", name, items))
        return items[name]

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for a kind."""
        return sorted(self._items[kind])

    def components(self, kind: str) -> list[Component]:
        """Components of a kind in registration order (built-in plugins first)."""
        return list(self._items[kind].values())

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        """Component names per kind registered by one plugin."""
        found = {
            kind: sorted(n for n, c in items.items() if c.plugin == plugin)
            for kind, items in self._items.items()
        }
        return {kind: names for kind, names in found.items() if names}


def unknown_choice(what: str, name: str, choices: Any) -> str:
    """Message for an unknown name, with the valid choices and the closest match."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what}; choose from: {', '.join(choices) or '(none)'}{hint}"
