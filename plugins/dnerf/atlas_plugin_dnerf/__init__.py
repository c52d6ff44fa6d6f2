"""Dynamic scenes for NeRF Atlas: the ``dnerf`` data kind and time-conditioned deformations.

``--plugins dnerf`` wraps the run's field (any canonical field) in a deformation chosen
by ``--set dnerf.deformation=mlp|spline|planes``: D-NeRF's MLP (Pumarola et al. 2021),
per-point Bezier motion with rigidity, or factored space-time planes (K-Planes,
Fridovich-Keil et al. 2023). Enabling it loads D-NeRF scenes (data kind ``dnerf``)
unless ``--data-kind`` says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atlas_core.api import (
    ConfigError,
    PluginError,
    Register,
    ViewerHandle,
    hookimpl,
    plugin_options,
    prefer_occupancy,
)
from atlas_plugin_dnerf.data import detect_dnerf, load_dnerf
from atlas_plugin_dnerf.deformation import Deformation, make_deformation
from atlas_plugin_dnerf.field import DeformedField, deform, passes_position_gradient
from atlas_plugin_dnerf.kplanes import KPlanesField
from atlas_plugin_dnerf.losses import (
    DisplacementLoss,
    DivergenceLoss,
    RigidityLoss,
    SplineLengthLoss,
)
from atlas_plugin_dnerf.maps import flow_image, render_motion, write_maps
from atlas_plugin_dnerf.motion_scene import write_motion_scene
from atlas_plugin_dnerf.options import DNeRFOptions
from atlas_plugin_dnerf.plane_losses import PlaneTVLoss, StaticTimeLoss, TimeSmoothnessLoss
from atlas_plugin_dnerf.synth import generate

if TYPE_CHECKING:
    from torch import Tensor, nn

    from atlas_core.api import RayBundle, Run, RunConfig

__all__ = ["DNeRFOptions", "DeformedField", "KPlanesField", "load_dnerf"]
__version__ = "1.0.0"

NAME = "dnerf"
MOTION_KIND = "dnerf_motion"  # same loader; `atlas data synth` makes the large-motion scene
DEFAULT_BOUND = 1.5  # the blender/dnerf loaders' default data.bound
KPLANES = "kplanes"  # the space-time field (needs no deformation)
KPLANES_TARGET_SAMPLES = 1 << 15  # samples per step: more, smaller steps fit motion sooner
# K-Planes' regularisers for D-NeRF scenes (time smoothness, plane TV, sparse transients)
# and a weak Mip-NeRF 360 distortion term (large-motion scene, 300 s: 25.33 dB mean of two
# runs against 24.93), on unless the run sets them (0 turns one off)
KPLANES_LOSSES = {"time_smooth": 0.1, "plane_tv": 1e-4, "static_time": 1e-4, "distortion": 1e-3}
# a coarser occupancy grid, refreshed less often, for kplanes (each refresh reads 4 times;
# steps of a third of its cells' diagonal), with DVGO's culling of low-weight samples; the
# culling's density pass in rounds of 4 samples per ray first: at 32k samples a step it
# had taken 326 of 429 ms a step, reading 10 times the kept samples (large-motion scene,
# 200 px: 429 ms a step in one pass, 297-323 in rounds of 16, 193 in rounds of 4; the same
# samples kept)
KPLANES_SAMPLER = {"resolution": 64, "warmup_steps": 64, "update_every": 32,
                   "weight_threshold": 1e-4, "rounds": True, "first_round": 4}  # fmt: skip
STATIC_KINDS = ("blender",)  # data kinds known to carry no times (others checked at start)


def options(config: RunConfig) -> DNeRFOptions:
    """The run's checked ``dnerf.*`` options."""
    return plugin_options(config, NAME, DNeRFOptions)


@hookimpl
def atlas_register_datasets(register: Register) -> None:
    """D-NeRF scenes: blender layout with a time per frame."""
    register(NAME, load_dnerf, description="NeRF-synthetic layout whose frames carry a time",
             synth=generate, detect=detect_dnerf)  # fmt: skip
    register(MOTION_KIND, load_dnerf, description="the dnerf kind; its generated scene has "
             "large motion (objects cross the floor, bounce and turn)",
             synth=write_motion_scene)  # fmt: skip


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The space-time K-Planes field."""
    register(KPLANES, KPlanesField, description="K-Planes: six multiplied planes over (x, y, z, t)")


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """Motion regularisers and the K-Planes field's plane regularisers."""
    register("plane_tv", PlaneTVLoss, description="K-Planes: total variation of the planes")
    register("time_smooth", TimeSmoothnessLoss,
             description="K-Planes: squared time Laplacian of the space-time planes")  # fmt: skip
    register("static_time", StaticTimeLoss,
             description="K-Planes: mean |1 - p| of the space-time planes")  # fmt: skip
    register("displacement", DisplacementLoss, description="mean squared displacement")
    register("divergence", DivergenceLoss, description="squared divergence of the motion")
    register("spline_length", SplineLengthLoss, description="Bezier control-polygon length")
    register("rigidity", RigidityLoss, description="mean rigidity (prefers static points)")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check the ``dnerf.*`` options; load D-NeRF folders unless the user chose a data kind
    (they are blender folders whose frames carry a time); refuse a static one.

    With ``data.kind = auto`` the folder's layout decides: ``detect_dnerf`` claims blender
    folders whose frames carry a time, and ``atlas_wrap_field`` refuses a static kind found.
    """
    chosen = config.plugin_options.get(NAME, {})
    if config.field.name == KPLANES:
        if "deformation" not in chosen:
            chosen = config.plugin_options.setdefault(NAME, {})
            chosen["deformation"] = "none"  # the field models time itself
        for name, weight in KPLANES_LOSSES.items():
            config.losses.setdefault(name, weight)
        prefer_occupancy(config, KPLANES_TARGET_SAMPLES)
        if config.sampler.name == "occupancy":  # max over time: 4 lookups a cell
            for key, value in KPLANES_SAMPLER.items():
                config.sampler.options.setdefault(key, value)
    if options(config).deformation == "none" and config.field.name != KPLANES:
        raise ConfigError(
            f"plugin 'dnerf': dnerf.deformation=none needs a field that models time; "
            f"field '{config.field.name}' does not (use --set field={KPLANES})"
        )
    if "data.kind" not in config.explicit and config.data.kind == "blender":
        config.data.kind = "dnerf"
    if config.data.kind in STATIC_KINDS:
        raise ConfigError(no_times(config))


def no_times(config: RunConfig) -> str:
    """The error for a dynamic run on data without frame times."""
    return (
        f"plugin 'dnerf': data kind '{config.data.kind}' gives no frame times; "
        "load a dynamic scene (--data-kind dnerf, the default with this plugin)"
    )


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> nn.Module | None:
    """Wrap the canonical field in the chosen deformation."""
    if config.data.kind in STATIC_KINDS:  # detected after configure (data.kind = auto)
        raise ConfigError(no_times(config))
    if options(config).deformation == "none":
        return None  # a space-time field (kplanes) sees the rays' times itself
    if not passes_position_gradient(field):
        raise PluginError(
            f"plugins 'dnerf' and field '{config.field.name}' ({type(field).__name__}) clash: "
            "the field passes no gradient to sample positions, so the deformation cannot "
            "learn; choose another field with --set field=NAME"
        )
    bound = float(config.data.options.get("bound", DEFAULT_BOUND))
    chosen = options(config)
    return deform(field, make_deformation(bound, chosen), chosen.occupancy_times)


@hookimpl
def atlas_train_start(run: Run) -> None:
    """A dynamic run needs data with times (for data kinds not known at configure time)."""
    if run.scene.split("train").times is None:
        raise ConfigError(no_times(run.config))


@hookimpl
def atlas_train_step_end(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Advance the deformation's coarse-to-fine window (``dnerf.anneal_steps``)."""
    for module in run.pipeline.field.modules():
        if isinstance(module, Deformation):
            module.set_progress(step)  # steps done


@hookimpl
def atlas_train_end(run: Run, metrics: dict[str, Any]) -> None:
    """Flow maps (and rigidity maps for the spline) next to the test images."""
    count = options(run.config).maps
    if count and run.main and options(run.config).deformation == "none":
        print(f"dnerf: no flow maps: field '{run.config.field.name}' models time without a "
              "deformation, so there is no motion field to draw")  # fmt: skip
    elif count and run.main:
        config = run.config
        write_maps(run.pipeline, run.scene, run.device, config.eval.views, count,
                   config.eval.chunk, run.out / "test")  # fmt: skip


FLOW_SCALE = 0.1  # a displacement of this fraction of the scene box's size is full colour


@hookimpl
def atlas_viewer_setup(viewer: ViewerHandle, run: Run) -> None:
    """A ``flow`` output in the live viewer: the learned displacement at the time slider's
    time, composited like colour (deformed fields; K-Planes has no motion field)."""
    if options(run.config).deformation == "none":
        return
    bounds = run.scene.bounds
    scale = FLOW_SCALE * max(bounds[i + 3] - bounds[i] for i in range(3))

    def flow(rays: RayBundle, outputs: dict[str, Tensor]) -> Tensor:
        moved = render_motion(run.pipeline, rays, len(rays)).get("flow")
        if moved is None:
            return outputs["rgb"].new_full((len(rays), 3), 0.5)
        return flow_image(moved, scale)

    viewer.add_output("flow", flow)
