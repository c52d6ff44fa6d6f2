"""Building a run from its config: the composition rule, factories and their options.

``configure`` lets each enabled plugin adjust the config (filling slots still at their
default; two plugins claiming one slot is a clash naming both); ``BuildContext`` is what
component factories receive: the config, the plugins, the scene, and ways to create the
run's encoding and field.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

from torch import nn

from atlas_core.config import SLOTS, RunConfig, Slot, coerce_option
from atlas_core.data.scene import SceneData
from atlas_core.errors import ConfigError, PluginError
from atlas_core.plugins import AtlasPlugins
from atlas_core.registry import unknown_choice

__all__ = [
    "BuildContext",
    "accepts_context",
    "call_factory",
    "configure",
    "factory_options",
    "field_owner",
    "plugin_options",
    "prefer",
    "require_encoding",
]

SUPPLIED = ("context", "in_dim", "self")


def factory_options(factory: Any) -> dict[str, tuple[Any, Any]]:
    """Keyword options of a factory: name -> (annotation, default)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    module = inspect.getmodule(target)
    namespace = dict(vars(module)) if module else {}
    options = {}
    for name, param in inspect.signature(factory).parameters.items():
        if name in SUPPLIED or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace, vars(typing))  # noqa: S307
            except Exception:  # noqa: BLE001 - unresolvable hints accept any value
                annotation = Any
        if annotation is inspect.Parameter.empty:
            annotation = Any
        options[name] = (annotation, param.default)
    return options


def accepts_context(factory: Any) -> bool:
    """True when the factory takes the BuildContext."""
    return "context" in inspect.signature(factory).parameters


def call_factory(factory: Any, what: str, prefix: str, options: dict, **supplied: Any) -> Any:
    """Call a factory with type-checked options; its ValueError becomes a ConfigError."""
    known = factory_options(factory)
    kwargs = {}
    for key, value in options.items():
        if key not in known:
            choices = [f"{prefix}.{k}" for k in known]
            raise ConfigError(
                unknown_choice(f"option '{prefix}.{key}' for {what}", f"{prefix}.{key}", choices)
            )
        kwargs[key] = coerce_option(f"{prefix}.{key}", value, known[key][0])
    try:
        return factory(**supplied, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def plugin_options(config: RunConfig, plugin: str, factory: Any) -> Any:
    """A plugin's checked options: ``factory(**config.plugin_options[plugin])``.

    The keys of the plugin's section (``--set PLUGIN.KEY=VALUE``) must be keyword
    options of ``factory`` with matching types, as for components.
    """
    options = config.plugin_options.get(plugin, {})
    return call_factory(factory, f"plugin '{plugin}'", plugin, options)


@dataclass
class BuildContext:
    """What factories may use: the config, the plugins, the scene's extent."""

    config: RunConfig
    plugins: AtlasPlugins
    scene: SceneData
    field: nn.Module | None = None  # the run's (wrapped) field, once built

    def field_module(self) -> nn.Module:
        """The run's built field, for losses that regularise it (keep no submodule ref)."""
        if self.field is None:
            raise RuntimeError("the field is built before samplers, renderers and losses")
        return self.field

    def create(self, slot_key: str, slot: Slot, **supplied: Any) -> Any:
        """Create the component chosen for a slot, checking its options."""
        kind = SLOTS.get(slot_key, slot_key)
        component = self.plugins.registry.get(kind, slot.name)
        return self.call(
            component.factory, f"{slot_key} '{slot.name}'", slot_key, slot.options, **supplied
        )

    def call(self, factory: Any, what: str, prefix: str, options: dict, **supplied: Any) -> Any:
        """Call a factory with checked options, handing it this context if it asks."""
        if accepts_context(factory):
            supplied["context"] = self
        return call_factory(factory, what, prefix, options, **supplied)

    def make_encoding(self, in_dim: int) -> nn.Module:
        """The run's position encoding for an input of ``in_dim`` coordinates."""
        return self.create("encoding", self.config.encoding, in_dim=in_dim)

    def make_field(self) -> nn.Module:
        """The run's field, wrapped by every enabled plugin's ``atlas_wrap_field``."""
        field = self.create("field", self.config.field)
        for impl in self.plugins.impls("atlas_wrap_field"):
            wrapped = self.plugins.invoke(impl, "atlas_wrap_field", field=field, config=self.config)
            field = field if wrapped is None else wrapped
        return field


def configure(config: RunConfig, plugins: AtlasPlugins) -> None:
    """Let each plugin adjust the config; two plugins filling one slot is a conflict.

    Each plugin sees the slots as the user left them (so "fill a slot still at its
    default" works whatever ran before it); two plugins choosing different components
    for one slot is reported with both names. A slot the user chose explicitly keeps
    the user's choice. A plugin's ``prefer`` fills a slot only when no plugin claims it
    (``config.preferred`` then lists it); two different preferences for one slot clash.
    ``config.claimed`` names the plugin that claimed each claimed slot.
    """
    chosen = {slot: getattr(config, slot).name for slot in SLOTS}  # the user's or default
    owners: dict[str, str] = {}
    wishes: dict[str, tuple[str, str]] = {}  # slot -> (plugin, component) from ``prefer``
    for impl in plugins.impls("atlas_configure"):
        name = impl.plugin_name
        filled = {slot: getattr(config, slot).name for slot in owners}
        for slot in owners:
            getattr(config, slot).name = chosen[slot]
        config.preferred.clear()
        plugins.invoke(impl, "atlas_configure", config=config)
        for slot, wish in config.preferred.items():
            earlier = wishes.setdefault(slot, (name, wish))
            if earlier[1] != wish:
                raise PluginError(
                    f"plugins '{earlier[0]}' and '{name}' both prefer a {slot} "
                    f"('{earlier[1]}' vs '{wish}'); pick one with --set {slot}=NAME"
                )
        for slot in SLOTS:
            new = getattr(config, slot).name
            if new == chosen[slot]:
                if slot in owners:  # this plugin left it: keep the earlier plugin's choice
                    getattr(config, slot).name = filled[slot]
            elif slot in config.explicit:
                getattr(config, slot).name = chosen[slot]
            elif slot in owners and new != filled[slot]:
                raise PluginError(
                    f"plugins '{owners[slot]}' and '{name}' both choose the {slot} "
                    f"('{filled[slot]}' vs '{new}'); pick one with --set {slot}=NAME"
                )
            else:
                owners.setdefault(slot, name)
    config.claimed = dict(owners)
    config.preferred.clear()
    for slot, (_, wish) in wishes.items():
        if slot not in owners and slot not in config.explicit:
            getattr(config, slot).name = wish
            config.preferred[slot] = wish  # what was filled by preference, for inspection


def prefer(config: RunConfig, slot: str, name: str) -> None:
    """In ``atlas_configure``: fill ``slot`` with component ``name`` unless the user or
    another plugin chooses one (a plugin that works either way, say Mip-NeRF's sampler
    for MLP fields, which grid fields replace with their own)."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; choose from {', '.join(SLOTS)}")
    config.preferred[slot] = name


def field_owner(field: nn.Module) -> str:
    """The plugin that supplies the innermost field (wrappers such as D-NeRF skipped)."""
    from atlas_core.capabilities import owner
    from atlas_core.nerf.fields import Field

    fields = [m for m in field.modules() if isinstance(m, Field)] or [field]
    inner = next(f for f in fields if not any(isinstance(c, Field) for c in f.children()))
    return owner(inner)


def require_encoding(
    field: nn.Module, config: RunConfig, plugin: str, name: str, kind: type
) -> None:
    """Stop when the run's encoding is ``plugin``'s ``name`` but ``field`` holds no ``kind``."""
    if config.encoding.name != name or any(isinstance(m, kind) for m in field.modules()):
        return
    raise PluginError(
        f"plugins '{plugin}' and '{field_owner(field)}' clash on the encoding: field "
        f"'{config.field.name}' has its own position encoding, so the '{name}' encoding "
        "would be ignored; choose a field that takes the run's encoding "
        "(--set field=tiny, plain, ...) or another encoding (--set encoding=NAME)"
    )
