"""Optional capabilities of components, as typed protocols, and the tags of parameters.

A component declares a capability by implementing the protocol's members; the core asks
``isinstance(component, HasDensity)`` and never reads an undeclared attribute. When a run
is built, ``check_declarations`` tells a plugin that declares a capability wrongly (a member
of the wrong type, half of a pair, a near-miss spelling such as ``needs_crop``) which
component and member are at fault. Parameters are tagged with ``tag_parameter`` (its
learning-rate scale, masked updates, grid shape), never with loose attributes.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import Tensor, nn

from atlas_core.errors import PluginError

if TYPE_CHECKING:
    from atlas_core.data.scene import SceneData

__all__ = [
    "CAPABILITIES",
    "Antialiases",
    "Grows",
    "HasDensity",
    "HasSDF",
    "HasSDFGradient",
    "HasSampleStep",
    "NeedsCrops",
    "ParameterTags",
    "RendersViews",
    "ViewRenderer",
    "check_declarations",
    "first_with",
    "has_density",
    "owner",
    "parameter_tags",
    "tag_parameter",
]


@runtime_checkable
class HasDensity(Protocol):
    """A field whose volume density can be queried at points (occupancy grids, importance
    sampling, density meshes)."""

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] >= 0 at world positions [N, 3] (and times [N, 1] if dynamic)."""
        ...


@runtime_checkable
class HasSDF(Protocol):
    """A field with a signed distance function (SDF meshes, surface renderers)."""

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] at world positions [N, 3], negative inside."""
        ...


@runtime_checkable
class HasSDFGradient(Protocol):
    """An SDF field that computes its spatial gradient itself (e.g. a grid's exact one)."""

    def sdf_gradient(self, positions: Tensor) -> Tensor:
        """Gradient [N, 3] of the SDF at world positions [N, 3]."""
        ...


@runtime_checkable
class HasSampleStep(Protocol):
    """A field that names the marching step its occupancy sampling should take."""

    sample_step: float
    """World units between samples along a ray (> 0), e.g. a fraction of a voxel."""


@runtime_checkable
class Grows(Protocol):
    """A component with a schedule over the training steps (grid upscaling, a loss
    weight that decays).

    The core calls ``grow(step)`` after every optimiser step, in every module of the
    pipeline that has it; when any returns True it builds a fresh optimiser.
    """

    def grow(self, step: int) -> bool:
        """Apply the schedule for ``step``; True when parameters were replaced."""
        ...


@runtime_checkable
class Antialiases(Protocol):
    """A grid field that can integrate its features over each sample's frustum (Zip-NeRF's
    multisampling and level weights); the ``mip`` plugin turns it on."""

    def antialias(self, multisamples: int = 0) -> None:
        """From now on average ``multisamples`` points per frustum (0: the field's own
        count), levels weighted by size."""
        ...


class ViewRenderer(Protocol):
    """What renders whole views for evaluation and videos (a pipeline or an adapter)."""

    training: bool

    def render(self, rays: Any, chunk: int) -> dict[str, Tensor]:  # noqa: ANN401
        """Rendered ``rgb`` [R, 3], ``depth``, ``acc`` (and ``target_rgb`` with targets)."""
        ...

    def train(self, mode: bool = True) -> Any:  # noqa: ANN401
        """Set training or evaluation mode."""
        ...

    def eval(self) -> Any:  # noqa: ANN401
        """Evaluation mode."""
        ...


@runtime_checkable
class RendersViews(Protocol):
    """A renderer that renders one ray per ``ray_stride`` x ``ray_stride`` block of a crop
    and whole views through its own adapter (neural upsampling)."""

    ray_stride: int
    """Pixels per rendered ray along each axis (>= 1); training batches are crops."""

    def view_renderer(self, pipeline: nn.Module, scene: SceneData) -> ViewRenderer:
        """The adapter that renders whole views of ``scene`` with ``pipeline``."""
        ...


@runtime_checkable
class NeedsCrops(Protocol):
    """A loss that compares image crops (``train.batch=crops`` or ``views``)."""

    needs_crops: bool
    """True when the loss reads the crop layout of its rays."""


CAPABILITIES: tuple[type, ...] = (
    HasDensity,
    HasSDF,
    HasSDFGradient,
    HasSampleStep,
    Grows,
    Antialiases,
    RendersViews,
    NeedsCrops,
)
"""Every capability protocol, checked by ``check_declarations``."""

METHODS = {"density", "sdf", "sdf_gradient", "grow", "antialias", "view_renderer"}
VALUES = {"sample_step", "ray_stride", "needs_crops"}
TAG_NAMES = ("lr_scale", "masked_updates", "grid_shape")
NEAR_MISS = 0.88  # difflib ratio above which a name is taken for a misspelt member


def has_density(field: nn.Module) -> bool:
    """True when ``field`` itself can be asked for its density."""
    return isinstance(field, HasDensity)


def first_with(module: nn.Module, capability: type) -> Any:  # noqa: ANN401 - a component
    """The outermost module of ``module`` (itself included) that has ``capability``, or None."""
    return next((m for m in module.modules() if isinstance(m, capability)), None)


def owner(component: object) -> str:
    """The plugin a component comes from: ``x`` for ``atlas_plugin_x``, ``core`` for the core."""
    package = type(component).__module__.split(".")[0]
    return "core" if package == "atlas_core" else package.removeprefix("atlas_plugin_")


@dataclass(frozen=True)
class ParameterTags:
    """How the optimiser treats one parameter."""

    lr_scale: float = 1.0
    """Its learning rate as a multiple of the run's (grids learn faster than MLPs)."""
    masked_updates: bool = False
    """Adam moves only the entries whose gradient is non-zero (DVGO's masked Adam)."""
    grid_shape: tuple[int, int, int] | None = None
    """Vertices per axis of a dense grid stored channels-last as [X*Y*Z, C]."""


_TAGS = "_atlas_tags"
_UNTAGGED = ParameterTags()


def tag_parameter(
    param: Tensor,
    *,
    lr_scale: float | None = None,
    masked_updates: bool | None = None,
    grid_shape: tuple[int, int, int] | None = None,
) -> Tensor:
    """Declare how the optimiser treats ``param`` (tags not given keep their value).

    ``lr_scale`` > 0 multiplies the run's learning rate; ``masked_updates`` asks Adam to
    update touched entries only; ``grid_shape`` marks a dense grid [X*Y*Z, C] for
    ``train.optimizer=uniform_adam``. Returns ``param``.
    """
    tags = parameter_tags(param)
    if lr_scale is not None:
        if isinstance(lr_scale, bool) or not (isinstance(lr_scale, (int, float)) and lr_scale > 0):
            raise ValueError(f"lr_scale must be a number > 0, got {lr_scale!r}")
        if not math.isfinite(lr_scale):
            raise ValueError(f"lr_scale must be finite, got {lr_scale!r}")
        tags = replace(tags, lr_scale=float(lr_scale))
    if masked_updates is not None:
        if not isinstance(masked_updates, bool):
            raise ValueError(f"masked_updates must be True or False, got {masked_updates!r}")
        tags = replace(tags, masked_updates=masked_updates)
    if grid_shape is not None:
        shape = tuple(int(s) for s in grid_shape)
        if len(shape) != 3 or math.prod(shape) != param.shape[0]:
            raise ValueError(f"grid shape {grid_shape} does not match {param.shape[0]} rows")
        tags = replace(tags, grid_shape=shape)
    setattr(param, _TAGS, tags)
    return param


def parameter_tags(param: Tensor) -> ParameterTags:
    """The tags ``tag_parameter`` gave ``param`` (defaults when untagged)."""
    return getattr(param, _TAGS, _UNTAGGED)


def _members(module: nn.Module) -> set[str]:
    """Public attribute names a module adds to ``nn.Module`` (class and instance)."""
    names = {n for n in dir(type(module)) if not n.startswith("_")}
    names |= {n for n in vars(module) if not n.startswith("_")}
    return names - set(dir(nn.Module))


def _check_member(module: nn.Module, name: str) -> str | None:
    """Why ``module``'s capability member ``name`` is malformed, or None."""
    value = getattr(module, name)
    if name in METHODS:
        return None if callable(value) else f"'{name}' must be a method"
    if name == "needs_crops":
        return (
            None if isinstance(value, bool) else f"needs_crops must be True or False, got {value!r}"
        )
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "ray_stride":
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return f"ray_stride must be an int >= 1, got {value!r}"
        if not callable(getattr(module, "view_renderer", None)):
            return "declares ray_stride without view_renderer (RendersViews needs both)"
        return None
    if not (number and math.isfinite(value) and value > 0):
        return f"sample_step must be a number > 0 (world units), got {value!r}"
    return None


def check_declarations(model: nn.Module) -> None:
    """Raise PluginError for a capability declared wrongly anywhere in ``model``, or a
    parameter tagged by a loose attribute instead of ``tag_parameter``."""
    members = METHODS | VALUES
    for path, module in model.named_modules():
        where = f"{type(module).__name__} ({owner(module)}){' at ' + path if path else ''}"
        found = _members(module)
        for name in sorted(found & members):
            problem = _check_member(module, name)
            if problem:
                raise PluginError(f"{where}: {problem}")
        for name in sorted(found - members):
            close = difflib.get_close_matches(name, members, n=1, cutoff=NEAR_MISS)
            if close and len(name) >= 6:
                raise PluginError(
                    f"{where}: attribute '{name}' looks like the capability member "
                    f"'{close[0]}' misspelt; the core only reads '{close[0]}'"
                )
    for name, param in model.named_parameters():
        loose = [tag for tag in TAG_NAMES if tag in vars(param)]
        if loose:
            raise PluginError(
                f"parameter '{name}' sets {loose[0]} as an attribute, which the core does not "
                f"read; declare it with tag_parameter(param, {loose[0]}=...) from atlas_core.api"
            )
