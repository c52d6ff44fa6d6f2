"""The shared machinery of the contract tests (see ``contracts.py``): a tiny scene,
checks on values, and ``ComponentContract``, which builds a component as a run does."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import tomli_w
import torch
from torch import Tensor, nn

from atlas_core.build import BuildContext, configure, factory_options
from atlas_core.config import RunConfig, load_toml, save_toml
from atlas_core.data.scene import SceneData, Views, make_rays
from atlas_core.nerf.cameras import look_at
from atlas_core.nerf.rays import RayBundle
from atlas_core.plugins import AtlasPlugins, load

__all__ = ["ComponentContract", "Outputs", "assert_finite", "contract_scene", "toml_value"]

Outputs = dict[str, Tensor]


def contract_scene(views: int = 2, size: int = 8, times: bool = False) -> SceneData:
    """A tiny in-memory scene: cameras on a circle of radius 4 looking at the origin."""
    generator = torch.Generator().manual_seed(0)
    poses = []
    for i in range(views):
        angle = 2 * math.pi * i / views
        eye = torch.tensor([4 * math.cos(angle), 4 * math.sin(angle), 1.0])
        poses.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    images = torch.randint(0, 256, (views, size, size, 4), generator=generator, dtype=torch.uint8)
    focal = 0.5 * size / math.tan(0.5 * 0.69)
    stamps = torch.linspace(0.0, 1.0, views) if times else None
    split = Views(images, torch.stack(poses), focal, stamps, [f"r_{i}" for i in range(views)])
    return SceneData({"train": split, "test": split}, name="contract")


def toml_value(value: Any) -> bool:
    """True when ``value`` can be written to TOML and read back as itself."""
    try:
        return tomllib.loads(tomli_w.dumps({"v": value}))["v"] == value
    except (TypeError, ValueError):
        return False


def assert_finite(name: str, value: Tensor) -> None:
    """Fail with the output's name when a tensor holds NaN or Inf."""
    if value.is_floating_point():
        assert bool(torch.isfinite(value).all()), f"{name} holds NaN or Inf"


class ComponentContract:
    """Checks shared by every component kind built from a run config slot."""

    kind: ClassVar[str] = ""  # registry kind: fields, encodings, samplers, ...
    slot: ClassVar[str] = ""  # config slot: field, encoding, sampler, renderer
    name: ClassVar[str] = ""  # registered component name
    plugins: ClassVar[tuple[str, ...]] = ()  # installed plugins to enable
    extra: ClassVar[tuple[tuple[str, object], ...]] = ()  # in-process (name, plugin) pairs
    options: ClassVar[dict[str, Any]] = {}  # the component's options
    settings: ClassVar[dict[str, Any]] = {}  # other dotted config keys
    seed: ClassVar[int] = 0
    num_rays: ClassVar[int] = 8
    with_times: ClassVar[bool] = False  # give rays a time (dynamic scenes)

    # -- how the component is made and fed: override where needed ---------------------

    def load_plugins(self) -> AtlasPlugins:
        """The core plus this contract's plugins."""
        return load(self.plugins, extra=self.extra)

    def make_config(self) -> RunConfig:
        """A run config choosing this component (explicitly) with its options."""
        config = RunConfig()
        config.plugins = list(self.plugins)
        for key, value in self.settings.items():
            config.set(key, value)
        self.choose(config)
        return config

    def choose(self, config: RunConfig) -> None:
        """Select the component under test in ``config``."""
        config.set(self.slot, self.name)
        for key, value in self.options.items():
            config.set(f"{self.slot}.{key}", value)

    def make_scene(self) -> SceneData:
        """The scene handed to factories."""
        return contract_scene(times=self.with_times)

    def prepare(self, config: RunConfig, plugins: AtlasPlugins) -> BuildContext:
        """Configure like a run and return the build context."""
        configure(config, plugins)
        return BuildContext(config, plugins, self.make_scene())

    def make_rays(self, context: BuildContext) -> RayBundle:
        """``num_rays`` rays with targets through pixels of the scene's first view."""
        views = context.scene.split("train")
        generator = torch.Generator().manual_seed(self.seed)
        count = self.num_rays
        rows = torch.randint(views.height, (count,), generator=generator)
        cols = torch.randint(views.width, (count,), generator=generator)
        images = torch.randint(len(views), (count,), generator=generator)
        return make_rays(views, images, rows, cols, context.scene)

    def build(self, context: BuildContext) -> nn.Module:
        """Create the component under test."""
        return context.create(self.slot, getattr(context.config, self.slot))

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """Feed the component; returns its outputs and input leaves that take gradients."""
        raise NotImplementedError

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """Assert output keys and shapes."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------

    def evaluate(self, config: RunConfig | None = None) -> tuple[nn.Module, Outputs, list[Tensor]]:
        """Build and run the component from a fresh seed."""
        config = config or self.make_config()
        torch.manual_seed(self.seed)
        context = self.prepare(config, self.load_plugins())
        component = self.build(context)
        outputs, leaves = self.run(component, context)
        return component, outputs, leaves

    # -- the contract -------------------------------------------------------------------

    def test_registered(self) -> None:
        """The name is registered for its kind and takes every option given."""
        component = self.load_plugins().registry.get(self.kind, self.name)
        known = factory_options(component.factory)
        unknown = sorted(set(self.options) - set(known))
        assert not unknown, f"{self.kind} '{self.name}' has no options {unknown}"

    def test_output_keys_and_shapes(self) -> None:
        """Outputs have the documented keys and shapes and are finite."""
        config = self.make_config()
        torch.manual_seed(self.seed)
        context = self.prepare(config, self.load_plugins())
        outputs, _ = self.run(self.build(context), context)
        for key, value in outputs.items():
            assert_finite(key, value)
        self.check_outputs(outputs, context)

    def test_finite_gradients(self) -> None:
        """Backpropagating the outputs gives finite gradients, and some are nonzero."""
        component, outputs, leaves = self.evaluate()
        total = sum(v.float().mean() for v in outputs.values() if v.requires_grad)
        assert isinstance(total, Tensor), "no output depends on a parameter or input"
        total.backward()
        params = [p for p in component.parameters() if p.requires_grad]
        grads = [t.grad for t in [*params, *leaves] if t.grad is not None]
        grads = [g.to_dense() if g.is_sparse else g for g in grads]  # sparse row gradients
        for grad in grads:
            assert bool(torch.isfinite(grad).all()), "a gradient holds NaN or Inf"
        assert any(bool(g.abs().sum() > 0) for g in grads), "every gradient is zero"

    def test_config_round_trip(self, tmp_path: Path) -> None:
        """The chosen options survive TOML and build an identical component."""
        config = self.make_config()
        save_toml(config, tmp_path / "config.toml")
        loaded = load_toml(tmp_path / "config.toml")
        assert loaded.to_dict() == config.to_dict()
        first, first_out, _ = self.evaluate(config)
        second, second_out, _ = self.evaluate(loaded)
        self.assert_same(first, second, first_out, second_out)

    def test_default_options_round_trip(self, tmp_path: Path) -> None:
        """Every option with a TOML-writable default can be given in a config file."""
        config = self.make_config()
        component = self.load_plugins().registry.get(self.kind, self.name)
        defaults = {
            key: default
            for key, (_, default) in factory_options(component.factory).items()
            if key not in self.options and toml_value(default)
        }
        for key, value in defaults.items():
            self.set_option(config, key, value)
        save_toml(config, tmp_path / "config.toml")
        loaded = load_toml(tmp_path / "config.toml")
        _, outputs, _ = self.evaluate(loaded)
        assert outputs, "no outputs"

    def test_deterministic_under_seed(self) -> None:
        """The same seed gives the same parameters and outputs."""
        first, first_out, _ = self.evaluate()
        second, second_out, _ = self.evaluate()
        self.assert_same(first, second, first_out, second_out)

    def set_option(self, config: RunConfig, key: str, value: Any) -> None:
        """Set one option of the component under test."""
        config.set(f"{self.slot}.{key}", value)

    @staticmethod
    def assert_same(first: nn.Module, second: nn.Module, a: Outputs, b: Outputs) -> None:
        """Two builds hold equal state and gave equal outputs."""
        state_a, state_b = first.state_dict(), second.state_dict()
        assert state_a.keys() == state_b.keys(), "the two builds differ in their state"
        for key, value in state_a.items():
            assert torch.equal(value, state_b[key]), f"state '{key}' differs"
        assert a.keys() == b.keys(), "the two builds give different outputs"
        for key, value in a.items():
            assert torch.equal(value, b[key]), f"output '{key}' differs"
