"""Contract tests: subclass one per component and pytest runs the shared checks on it.

Each contract builds its component the way a run does (config -> ``configure`` ->
registry factory -> BuildContext) and checks: output keys and shapes, finite gradients,
the config round trip (options through ``RunConfig`` TOML and back build the same
component) and determinism under a seed. A plugin's tests subclass them::

    from atlas_core.testing.contracts import FieldContract

    class TestMyField(FieldContract):
        name = "myfield"          # the registered name
        plugins = ("myplugin",)   # installed plugins to enable (entry-point names)
        options = {"width": 16}   # the component's options, small for speed

Override ``build`` (how the component is made) or ``run`` (what it is fed) where a
component needs something special; class names must start with ``Test``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlas_core.build import BuildContext, factory_options
from atlas_core.capabilities import Antialiases, first_with, has_density
from atlas_core.config import RunConfig, load_toml, save_toml
from atlas_core.data.scene import SceneData, make_rays
from atlas_core.nerf.fields import Field
from atlas_core.nerf.pipeline import Pipeline
from atlas_core.nerf.rays import RaySamples, samples_from_bins
from atlas_core.nerf.samplers import stratified_edges
from atlas_core.plugins import load
from atlas_core.testing.contract_base import (  # noqa: F401 (re-exported for plugins)
    ComponentContract,
    Outputs,
    assert_finite,
    contract_scene,
    toml_value,
)


def check_per_sample(outputs: Outputs, count: int, exclude: tuple[str, ...] = ()) -> None:
    """Every output not in ``exclude`` has one row per sample."""
    for key, value in outputs.items():
        if key not in exclude:
            assert value.shape[0] == count, f"{key} has {value.shape[0]} rows, not {count}"


class FieldContract(ComponentContract):
    """A field maps the run sampler's samples to per-sample ``density`` and ``rgb``."""

    kind, slot = "fields", "field"
    required: ClassVar[tuple[str, ...]] = ("density", "rgb")

    def build(self, context: BuildContext) -> nn.Module:
        """The run's field, wrapped by every enabled plugin."""
        field = context.make_field()
        context.field = field
        return field

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """Samples from the run's sampler through the field."""
        sampler = context.create("sampler", context.config.sampler)
        samples, _ = sampler(self.make_rays(context), component)
        outputs = dict(component(samples))
        outputs["_positions"] = samples.positions.detach()
        if has_density(component):
            outputs["_density_query"] = component.density(samples.positions, samples.times)
        return outputs, []

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """Required keys; density [N, 1] >= 0, rgb [N, 3] in [0, 1]; one row per sample."""
        for key in self.required:
            assert key in outputs, f"field output lacks '{key}'"
        count = outputs["_positions"].shape[0]
        assert count > 0, "the sampler gave no samples"
        assert outputs["density"].shape == (count, 1)
        assert bool((outputs["density"] >= 0).all()), "negative density"
        assert outputs["rgb"].shape == (count, 3)
        assert bool(((outputs["rgb"] >= 0) & (outputs["rgb"] <= 1)).all()), "rgb outside [0, 1]"
        if "_density_query" in outputs:
            assert outputs["_density_query"].shape == (count, 1)
        check_per_sample(outputs, count)

    def test_antialiasing_when_declared(self) -> None:
        """A field that ``Antialiases``: a negative count is refused; ``antialias()`` picks
        a count of its own; then outputs keep the contract, empty batches included."""
        config = self.make_config()
        torch.manual_seed(self.seed)
        context = self.prepare(config, self.load_plugins())
        field = self.build(context)
        grid = first_with(field, Antialiases)
        if grid is None:
            return
        with pytest.raises(ValueError, match="multisamples"):
            grid.antialias(-1)
        grid.antialias()
        outputs, _ = self.run(field, context)
        self.check_outputs(outputs, context)
        sampler = context.create("sampler", context.config.sampler)
        samples, _ = sampler(self.make_rays(context), field)
        none = RaySamples(samples.rays, samples.t_starts[:0], samples.t_ends[:0],
                          samples.ray_indices[:0])  # fmt: skip
        empty = field(none)
        assert empty["density"].shape == (0, 1) and empty["rgb"].shape == (0, 3)


class _DensitylessField(Field):
    """A field without ``density()``: wrappers must not claim one for it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, samples: RaySamples) -> Outputs:
        """Softplus density and sigmoid colour of a linear map of the position."""
        raw = self.linear(samples.positions)
        return {"density": F.softplus(raw[:, :1]), "rgb": torch.sigmoid(raw[:, 1:])}


class WrapperContract(FieldContract):
    """A plugin's ``atlas_wrap_field`` wraps the run's field and keeps the field contract.

    ``wrapper`` names the plugin under test (enable it in ``plugins``); the inner field is
    ``name`` (the core's ``tiny`` by default). The field checks run on the wrapped field.
    """

    name = "tiny"
    options: ClassVar[dict[str, Any]] = {"width": 16}
    wrapper: ClassVar[str] = ""  # the plugin whose atlas_wrap_field is under test

    def wrap(self, context: BuildContext, inner: nn.Module) -> nn.Module | None:
        """The wrapper plugin's own ``atlas_wrap_field`` applied to ``inner``."""
        plugins = context.plugins
        impls = [i for i in plugins.impls("atlas_wrap_field") if i.plugin_name == self.wrapper]
        assert impls, f"plugin '{self.wrapper}' does not implement atlas_wrap_field"
        return plugins.invoke(impls[0], "atlas_wrap_field", field=inner, config=context.config)

    def wrapped(self, inner: nn.Module | None = None) -> tuple[nn.Module, nn.Module | None]:
        """(inner field, what the wrapper made of it) under this contract's config."""
        config = self.make_config()
        torch.manual_seed(self.seed)
        context = self.prepare(config, self.load_plugins())
        inner = inner if inner is not None else context.create("field", config.field)
        return inner, self.wrap(context, inner)

    def test_wraps_the_field(self) -> None:
        """The wrapper is a new module that holds the field as a submodule."""
        inner, wrapped = self.wrapped()
        assert isinstance(wrapped, nn.Module), "atlas_wrap_field returned no module"
        assert wrapped is not inner, "atlas_wrap_field returned the field itself"
        assert any(m is inner for m in wrapped.modules()), "the field is not a submodule"

    def test_density_only_when_the_field_has_one(self) -> None:
        """``density()`` is declared for a field that has one, not for one without."""
        inner, wrapped = self.wrapped()
        assert has_density(inner) and has_density(wrapped), "density() of the field is lost"
        _, bare = self.wrapped(_DensitylessField())
        assert bare is not None and not has_density(bare), "density() declared without one"


class EncodingContract(ComponentContract):
    """An encoding maps [M, in_dim] coordinates to [M, out_dim] features."""

    kind, slot = "encodings", "encoding"
    in_dim: ClassVar[int] = 3
    points: ClassVar[int] = 32

    def build(self, context: BuildContext) -> nn.Module:
        """The run's encoding for ``in_dim`` coordinates."""
        return context.make_encoding(self.in_dim)

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """Random points in the scene box, and stratified samples along rays."""
        low = torch.tensor(context.scene.bounds[:3])[: self.in_dim]
        high = torch.tensor(context.scene.bounds[3:])[: self.in_dim]
        generator = torch.Generator().manual_seed(self.seed)
        unit = torch.rand(self.points, self.in_dim, generator=generator)
        x = (low + (high - low) * unit).requires_grad_()
        outputs = {"features": component(x)}
        if self.in_dim == 3:
            rays = self.make_rays(context)
            samples = samples_from_bins(rays, stratified_edges(rays, 8, jitter=False))
            outputs["sample_features"] = component.encode_samples(samples)
        return outputs, [x]

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """``features`` is [M, out_dim]; ``encode_samples`` agrees on the width."""
        encoding = self.build(context)
        assert encoding.in_dim == self.in_dim
        assert isinstance(encoding.out_dim, int) and encoding.out_dim >= 1
        assert outputs["features"].shape == (self.points, encoding.out_dim)
        if "sample_features" in outputs:
            assert outputs["sample_features"].shape == (self.num_rays * 8, encoding.out_dim)


class SamplerContract(ComponentContract):
    """A sampler turns rays into packed, sorted intervals within each ray's range."""

    kind, slot = "samplers", "sampler"

    def build(self, context: BuildContext) -> nn.Module:
        """The run's field first (samplers may query it), then the sampler, together."""
        context.field = context.make_field()
        sampler = context.create("sampler", context.config.sampler)
        return nn.ModuleDict({"sampler": sampler, "field": context.field})

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """Sample, evaluate the field and render with the run's renderer."""
        rays = self.make_rays(context)
        field = component["field"]
        samples, extras = component["sampler"](rays, field)
        renderer = context.create("renderer", context.config.renderer)
        rendered = renderer(field(samples), samples, renderer.background_color(rays))
        outputs = {
            "t_starts": samples.t_starts,
            "t_ends": samples.t_ends,
            "ray_indices": samples.ray_indices,
            "_near": rays.near[samples.ray_indices],
            "_far": rays.far[samples.ray_indices],
            "rgb": rendered["rgb"],
        }
        outputs.update({f"extra_{k}": v for k, v in extras.items()})
        return outputs, []

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """Packed by ray, ordered along each ray, midpoints in [near, far]; extras per ray."""
        starts, ends, index = outputs["t_starts"], outputs["t_ends"], outputs["ray_indices"]
        count = starts.shape[0]
        assert starts.shape == ends.shape == (count, 1) and index.shape == (count,)
        assert index.dtype == torch.long
        if count:
            assert int(index.min()) >= 0 and int(index.max()) < self.num_rays
            assert bool((index[1:] >= index[:-1]).all()), "samples are not packed by ray"
            same = index[1:] == index[:-1]
            assert bool((starts[1:, 0] >= starts[:-1, 0])[same].all()), "unsorted along a ray"
            assert bool((ends >= starts).all()), "an interval ends before it starts"
            eps = 1e-4
            assert bool((starts >= outputs["_near"] - eps).all()), "a sample before near"
            mid = 0.5 * (starts + ends)  # a marching step may end past far, its middle not
            assert bool((mid <= outputs["_far"] + eps).all()), "a sample beyond far"
        assert outputs["rgb"].shape == (self.num_rays, 3)
        for key, value in outputs.items():
            if key.startswith("extra_"):
                assert value.shape[0] == self.num_rays, f"{key} is not per ray"


class RendererContract(ComponentContract):
    """A renderer composites per-sample density and colour into per-ray images."""

    kind, slot = "renderers", "renderer"
    samples_per_ray: ClassVar[int] = 16
    required: ClassVar[tuple[str, ...]] = ("rgb", "acc", "depth", "weights")

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """Random densities and colours on stratified samples."""
        rays = self.make_rays(context)
        edges = stratified_edges(rays, self.samples_per_ray, jitter=False)
        samples: RaySamples = samples_from_bins(rays, edges)
        count = samples.t_starts.shape[0]
        generator = torch.Generator().manual_seed(self.seed)
        density = (3 * torch.rand(count, 1, generator=generator)).requires_grad_()
        rgb = torch.rand(count, 3, generator=generator).requires_grad_()
        background = component.background_color(rays)
        outputs = component({"density": density, "rgb": rgb}, samples, background)
        return dict(outputs), [density, rgb]

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """rgb [R, 3], acc [R, 1] in [0, 1], depth [R, 1], weights [N] summing to acc."""
        rays = self.num_rays
        for key in self.required:
            assert key in outputs, f"renderer output lacks '{key}'"
        assert outputs["rgb"].shape == (rays, 3)
        acc = outputs["acc"]
        assert acc.shape == (rays, 1) and outputs["depth"].shape == (rays, 1)
        assert bool(((acc >= 0) & (acc <= 1 + 1e-5)).all()), "acc outside [0, 1]"
        weights = outputs["weights"]
        assert weights.shape == (rays * self.samples_per_ray,)
        assert bool((weights >= 0).all()), "negative weights"
        per_ray = weights.view(rays, -1).sum(dim=1, keepdim=True)
        assert torch.allclose(per_ray, acc, atol=1e-5), "weights do not sum to acc"


class LossContract(ComponentContract):
    """A loss term gives a finite scalar from a run's rays and outputs."""

    kind, slot = "losses", "losses"
    weight: ClassVar[float] = 1.0
    calls: ClassVar[int] = 1  # evaluations per run, the last checked (for losses whose
    # graph is built on some calls only)

    def choose(self, config: RunConfig) -> None:
        """Add this loss term to the run."""
        config.set(f"losses.{self.name}", self.weight)

    def build(self, context: BuildContext) -> nn.Module:
        """The whole run pipeline (the loss may regularise its field)."""
        return Pipeline(context)

    def run(self, component: nn.Module, context: BuildContext) -> tuple[Outputs, list[Tensor]]:
        """The pipeline's outputs for a batch, then this loss term (``calls`` times)."""
        rays = self.make_rays(context)
        outputs, field_outputs = component(rays)
        for _ in range(self.calls):
            value = component.losses[self.name](rays, outputs, field_outputs)
        return {"loss": value}, []

    def check_outputs(self, outputs: Outputs, context: BuildContext) -> None:
        """A scalar."""
        assert outputs["loss"].shape == (), "a loss must be a scalar"

    def test_default_options_round_trip(self, tmp_path: Path) -> None:
        """A loss has no config options; its weight survives TOML as a float."""
        config = self.make_config()
        save_toml(config, tmp_path / "config.toml")
        weight = load_toml(tmp_path / "config.toml").losses[self.name]
        assert isinstance(weight, float) and weight == self.weight


class DatasetContract:
    """A data kind loads a folder into a SceneData that rays can be drawn from.

    The ``contract_data`` fixture gives the folder; override it for other formats.
    """

    name: ClassVar[str] = "blender"
    plugins: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def contract_data(self, atlas_scene: Path) -> Path:
        """The folder to load (default: the generated NeRF-synthetic scene)."""
        return atlas_scene

    def make_config(self, path: Path) -> RunConfig:
        """A run config reading ``path`` with this data kind and its options."""
        config = RunConfig()
        config.plugins = list(self.plugins)
        config.data.path = str(path)
        config.set("data.kind", self.name)
        config.data.ndc = config.data.contract = False  # the kind's own world-space scene
        for key, value in self.options.items():
            config.set(f"data.{key}", value)
        return config

    def load_scene(self, config: RunConfig) -> SceneData:
        """Load through the registry, as a run does."""
        from atlas_core.engine.trainer import load_scene

        return load_scene(config, load(self.plugins))

    def test_registered(self) -> None:
        """The data kind is registered and takes every option given."""
        component = load(self.plugins).registry.get("datasets", self.name)
        assert set(self.options) <= set(factory_options(component.factory))

    def test_output_keys_and_shapes(self, contract_data: Path) -> None:
        """Splits of uint8 RGBA images [N, H, W, 4] with c2w [N, 4, 4]; a valid box."""
        scene = self.load_scene(self.make_config(contract_data))
        assert "train" in scene.splits
        assert 0 < scene.near < scene.far
        low, high = scene.bounds[:3], scene.bounds[3:]
        assert all(a < b for a, b in zip(low, high, strict=True))
        for name, views in scene.splits.items():
            count = len(views)
            assert count > 0, f"split {name} is empty"
            assert views.images.dtype == torch.uint8
            assert views.images.shape == (count, views.height, views.width, 4)
            assert views.c2w.shape == (count, 4, 4) and views.c2w.is_floating_point()
            bottom = torch.tensor([0.0, 0.0, 0.0, 1.0])
            assert torch.allclose(views.c2w[:, 3], bottom.expand(count, 4))
            assert views.focal > 0
            if views.times is not None:
                assert views.times.shape == (count,)
                assert bool(((views.times >= 0) & (views.times <= 1)).all())

    def test_finite_values(self, contract_data: Path) -> None:
        """Poses and the rays drawn from every split are finite and well formed."""
        scene = self.load_scene(self.make_config(contract_data))
        for name, views in scene.splits.items():
            assert_finite(f"{name} c2w", views.c2w)
            index = torch.arange(len(views))
            centre = torch.full_like(index, views.height // 2)
            rays = make_rays(views, index, centre, torch.full_like(index, views.width // 2), scene)
            for key in ("origins", "directions", "near", "far", "radii", "rgba"):
                assert_finite(f"{name} {key}", getattr(rays, key))
            assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(len(views)))
            assert bool((rays.far >= rays.near).all())
            assert bool(((rays.rgba >= 0) & (rays.rgba <= 1)).all())

    def test_config_round_trip(self, contract_data: Path, tmp_path: Path) -> None:
        """The data kind and options survive TOML and load the same scene."""
        config = self.make_config(contract_data)
        save_toml(config, tmp_path / "config.toml")
        loaded = load_toml(tmp_path / "config.toml")
        assert loaded.to_dict() == config.to_dict()
        self.assert_same(self.load_scene(config), self.load_scene(loaded))

    def test_deterministic_under_seed(self, contract_data: Path) -> None:
        """Loading twice under one seed gives the same scene."""
        torch.manual_seed(0)
        first = self.load_scene(self.make_config(contract_data))
        torch.manual_seed(0)
        self.assert_same(first, self.load_scene(self.make_config(contract_data)))

    @staticmethod
    def assert_same(a: SceneData, b: SceneData) -> None:
        """Two scenes hold the same splits, images, poses and extent."""
        assert a.splits.keys() == b.splits.keys()
        assert (a.near, a.far, a.bounds) == (b.near, b.far, b.bounds)
        for name, views in a.splits.items():
            other = b.splits[name]
            assert torch.equal(views.images, other.images) and torch.equal(views.c2w, other.c2w)
            assert views.focal == other.focal


__all__ = [
    "ComponentContract",
    "DatasetContract",
    "EncodingContract",
    "FieldContract",
    "LossContract",
    "RendererContract",
    "SamplerContract",
    "WrapperContract",
    "contract_scene",
]
