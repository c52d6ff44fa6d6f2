"""Typed capabilities of components and parameter tags: read through protocols, checked at
start-up, so a plugin that declares one wrongly is told so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from atlas_core import hookimpl
from atlas_core.api import (
    HasDensity,
    HasSampleStep,
    Loss,
    NeedsCrops,
    RendersViews,
    VolumeRenderer,
    first_with,
    parameter_tags,
    tag_parameter,
)
from atlas_core.capabilities import check_declarations, owner
from atlas_core.config import RunConfig
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import ConfigError, PluginError
from atlas_core.nerf.fields import TinyField


def test_tags_default_merge_and_validate() -> None:
    """Untagged parameters get the defaults; tags given later keep the earlier ones."""
    param = nn.Parameter(torch.zeros(8, 2))
    assert parameter_tags(param).lr_scale == 1.0 and not parameter_tags(param).masked_updates
    assert tag_parameter(param, lr_scale=4) is param
    tag_parameter(param, masked_updates=True, grid_shape=(2, 2, 2))
    tags = parameter_tags(param)
    assert (tags.lr_scale, tags.masked_updates, tags.grid_shape) == (4.0, True, (2, 2, 2))
    for bad in ({"lr_scale": 0}, {"lr_scale": True}, {"lr_scale": float("inf")}):
        with pytest.raises(ValueError, match="lr_scale"):
            tag_parameter(param, **bad)
    with pytest.raises(ValueError, match="masked_updates"):
        tag_parameter(param, masked_updates=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not match 8 rows"):
        tag_parameter(param, grid_shape=(3, 3, 3))


def test_tags_survive_moving_and_loading() -> None:
    """A tagged parameter keeps its tags through ``.to()`` and ``load_state_dict``."""
    module = nn.Linear(2, 2)
    tag_parameter(module.weight, lr_scale=5.0)
    module.to(torch.float64)
    module.load_state_dict(nn.Linear(2, 2).double().state_dict())
    assert parameter_tags(module.weight).lr_scale == 5.0


class Crops(Loss):
    """A crop loss declared properly."""

    needs_crops = True

    def forward(self, rays, outputs, field_outputs) -> Tensor:  # noqa: ANN001
        """Zero."""
        return outputs["rgb"].sum() * 0


def test_protocols_recognise_declared_capabilities(atlas_pm) -> None:  # noqa: ANN001
    """Declaring a member is declaring the capability; a wrapper's inner field is found."""
    assert isinstance(Crops(), NeedsCrops) and not isinstance(nn.Linear(1, 1), NeedsCrops)
    assert not isinstance(VolumeRenderer(), RendersViews)

    class Stepped(nn.Module):
        sample_step = 0.01

    outer = nn.Sequential(nn.Linear(1, 1), Stepped())
    assert not isinstance(outer, HasSampleStep)
    assert isinstance(first_with(outer, HasSampleStep), Stepped)
    assert first_with(outer, HasDensity) is None
    assert owner(Crops()) == "test_capabilities" and owner(VolumeRenderer()) == "core"


class Declares(nn.Module):
    """A module with one capability member set to ``value``."""

    def __init__(self, member: str, value: object) -> None:
        super().__init__()
        setattr(self, member, value)


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("needs_crops", "yes", "needs_crops must be True or False, got 'yes'"),
        ("sample_step", -0.5, "sample_step must be a number > 0"),
        ("sample_step", float("nan"), "sample_step must be a number > 0"),
        ("ray_stride", 0, "ray_stride must be an int >= 1"),
        ("ray_stride", 2, "declares ray_stride without view_renderer"),
        ("density", 3.0, "'density' must be a method"),
        ("grow", "later", "'grow' must be a method"),
        ("needs_crop", True, "'needs_crop' looks like the capability member 'needs_crops'"),
        ("sample_steps", 0.1, "'sample_steps' looks like the capability member 'sample_step'"),
        ("view_render", None, "'view_render' looks like the capability member 'view_renderer'"),
    ],
)
def test_wrong_declarations_are_named(member: str, value: object, message: str) -> None:
    """Each malformed or misspelt member is reported with the component and its plugin."""
    model = nn.Sequential(nn.Linear(2, 2), Declares(member, value))
    with pytest.raises(PluginError) as info:
        check_declarations(model)
    assert message in str(info.value)
    assert str(info.value).startswith("Declares (test_capabilities) at 1: ")


def test_loose_parameter_attributes_are_refused() -> None:
    """``param.lr_scale = ...`` is not read by the core, so it is an error at start-up."""
    model = nn.Linear(2, 2)
    model.weight.lr_scale = 3.0
    with pytest.raises(PluginError, match=r"parameter 'weight' sets lr_scale as an attribute"):
        check_declarations(model)
    ok = nn.Linear(2, 2)
    tag_parameter(ok.weight, lr_scale=3.0)
    check_declarations(ok)


def small_config(scene: Path, **values: object) -> RunConfig:
    """A run of a few fast steps."""
    config = RunConfig()
    config.data.path = str(scene)
    settings = {"train.max_steps": 2, "train.batch_rays": 32, "sampler.samples": 4,
                "field.width": 8, "eval.views": 1, "eval.video_frames": 0}  # fmt: skip
    for key, value in {**settings, **values}.items():
        config.set(key, value)
    return config


def test_a_misdeclared_component_stops_the_run_at_start(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """A loss whose ``needs_crop`` is misspelt is named when the run is built."""

    class Misspelt(Loss):
        needs_crop = True

        def forward(self, rays, outputs, field_outputs) -> Tensor:  # noqa: ANN001
            return outputs["rgb"].sum() * 0

    class Plugin:
        name = "misspelt"

        @hookimpl
        def atlas_register_losses(self, register) -> None:  # noqa: ANN001
            register("misspelt", Misspelt)
            register("crops", Crops)

    config = small_config(atlas_scene, **{"losses.misspelt": 1.0})
    with pytest.raises(PluginError, match="'needs_crop' looks like .* 'needs_crops' misspelt"):
        Trainer(config, atlas_pm(Plugin()), tmp_path / "a")
    # the declared capability is read: a crop loss with ray batches is refused
    config = small_config(atlas_scene, **{"losses.crops": 1.0})
    with pytest.raises(ConfigError, match="losses.crops compares image crops"):
        Trainer(config, atlas_pm(Plugin()), tmp_path / "b")


def test_a_wrapped_fields_sample_step_sets_the_march(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """The occupancy sampler takes the sample step a field (or one it wraps) declares."""

    class Stepped(TinyField):
        sample_step = 0.0123

    class Wrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, samples):  # noqa: ANN001, ANN201
            return self.inner(samples)

        def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
            return self.inner.density(positions, times)

    class Plugin:
        name = "stepped"

        @hookimpl
        def atlas_register_fields(self, register) -> None:  # noqa: ANN001
            register("stepped", Stepped)

        @hookimpl
        def atlas_wrap_field(self, field: nn.Module) -> nn.Module:
            return Wrapper(field)

    config = small_config(atlas_scene, field="stepped", sampler="occupancy")
    config.sampler.options.clear()
    trainer = Trainer(config, atlas_pm(Plugin()), tmp_path / "run")
    assert trainer.pipeline.sampler.step_size == pytest.approx(0.0123)
