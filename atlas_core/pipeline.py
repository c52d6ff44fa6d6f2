"""Build a run's model from its config: configure, create components, wrap the field.

Data flow: RayBundle -> Sampler -> RaySamples -> Field -> outputs -> Renderer -> image,
and the weighted sum of the loss terms.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from atlas_core.config import SLOTS, RunConfig, Slot, coerce_option
from atlas_core.data.scene import SceneData
from atlas_core.errors import ConfigError, PluginError
from atlas_core.plugins import AtlasPlugins
from atlas_core.rays import RayBundle
from atlas_core.registry import unknown_choice

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
    the user's choice.
    """
    chosen = {slot: getattr(config, slot).name for slot in SLOTS}  # the user's or default
    owners: dict[str, str] = {}
    for impl in plugins.impls("atlas_configure"):
        name = impl.plugin_name
        filled = {slot: getattr(config, slot).name for slot in owners}
        for slot in owners:
            getattr(config, slot).name = chosen[slot]
        plugins.invoke(impl, "atlas_configure", config=config)
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


class Pipeline(nn.Module):
    """Sampler, field, renderer and weighted losses of one run."""

    def __init__(self, context: BuildContext):
        super().__init__()
        config = context.config
        self.field = context.field = context.make_field()
        self.sampler = context.create("sampler", config.sampler)
        self.renderer = context.create("renderer", config.renderer)
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, weight in config.losses.items():
            component = context.plugins.registry.get("losses", name)
            self.losses[name] = context.call(component.factory, f"loss '{name}'", name, {})
            self.weights[name] = weight

    def forward(self, rays: RayBundle) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Render ``rays``; returns per-ray outputs and per-sample field outputs."""
        samples, extras = self.sampler(rays, self.field)
        self.last_num_samples = samples.t_starts.shape[0]
        field_outputs = self.field(samples)
        background = self.renderer.background_color(rays)
        outputs = self.renderer(field_outputs, samples, background)
        if "coarse_rgb" in extras:
            extras["coarse_rgb"] = extras["coarse_rgb"] + (1 - extras["coarse_acc"]) * background
        outputs.update(extras)
        if rays.rgba is not None:
            target_bg = background
            if getattr(self.renderer, "background", None) == "learned":
                target_bg = torch.ones_like(background)
            alpha = rays.rgba[:, 3:]
            outputs["target_rgb"] = rays.rgba[:, :3] * alpha + target_bg * (1 - alpha)
        return outputs, field_outputs

    def loss(
        self, rays: RayBundle, outputs: dict[str, Tensor], field_outputs: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted total and the individual (unweighted) terms."""
        terms = {name: loss(rays, outputs, field_outputs) for name, loss in self.losses.items()}
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, terms

    @torch.no_grad()
    def render(self, rays: RayBundle, chunk: int) -> dict[str, Tensor]:
        """Render many rays in chunks without gradients: rgb, depth, acc."""
        keep = ("rgb", "depth", "acc", "target_rgb", "normals")
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(rays), chunk):
            outputs, _ = self(rays[start : start + chunk])
            for key in keep:
                if key in outputs:
                    parts.setdefault(key, []).append(outputs[key])
        return {key: torch.cat(values) for key, values in parts.items()}


def protocol_background(config: RunConfig) -> str:
    """The colour test images are composited over for metrics."""
    return "black" if config.renderer.options.get("background") == "black" else "white"


def build(config: RunConfig, plugins: AtlasPlugins, scene: SceneData) -> Pipeline:
    """Configure the run with its plugins, then build its pipeline."""
    configure(config, plugins)
    context = BuildContext(config, plugins, scene)
    return Pipeline(context)
