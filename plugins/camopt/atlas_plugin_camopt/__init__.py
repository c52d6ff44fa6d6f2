"""Camera-pose refinement for NeRF Atlas: poses from structure from motion are slightly off.

``--plugins camopt`` learns a rigid correction per training image while training
(nerfstudio's SO3xR3 camera optimiser: a 6-vector per image, zero at the start, rotation
through the SO(3) exponential map, translation added), by wrapping the run's field so the
samples of each training ray move rigidly about its camera's centre. Test views keep their
given poses. ``camopt.lr`` is the corrections' learning rate (0 freezes them).
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import torch

from atlas_core.api import ConfigError, PluginError, Register, hookimpl, plugin_options
from atlas_plugin_camopt.field import PoseCorrection, find_camopt, reaches_positions, refine
from atlas_plugin_camopt.loss import PoseL2Loss
from atlas_plugin_camopt.options import CamOptOptions
from atlas_plugin_camopt.so3 import exp_so3, rotation_angle

if TYPE_CHECKING:
    from torch import nn

    from atlas_core.api import Run, RunConfig

__all__ = ["CamOptOptions", "PoseCorrection", "exp_so3", "find_camopt", "rotation_angle"]
__version__ = "1.0.0"

NAME = "camopt"
PER_STEP_VIEWS = ("pixelnerf",)  # plugins whose atlas_train_views swap the training views
LOSS = "camopt_l2"
POSES_FILE = "camera_poses.json"


def options(config: RunConfig) -> CamOptOptions:
    """The run's checked ``camopt.*`` options."""
    return plugin_options(config, NAME, CamOptOptions)


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """The corrections' L2 penalty."""
    register(LOSS, PoseL2Loss, description="mean squared norm of the batch's pose corrections")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Check the options; ``camopt.l2 > 0`` adds the ``camopt_l2`` loss term; rays stay in
    world space (``data.ndc=false``) unless the user chose NDC."""
    chosen = options(config)
    for other in PER_STEP_VIEWS:
        if other in config.plugins:
            raise PluginError(
                f"plugins '{NAME}' and '{other}' clash: '{other}' (its data kind) draws each "
                "step's views from many scenes, so camera indices name no photo of one scene for "
                "per-image pose corrections; run without one of them"
            )
    if chosen.l2 > 0 and LOSS not in config.losses:
        config.losses[LOSS] = chosen.l2
    if "data.ndc" not in config.explicit:
        config.data.ndc = False  # a rigid pose change is not a rigid motion of NDC rays


@hookimpl(trylast=True)
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> nn.Module:
    """Wrap the field last (outermost), so the corrections move the samples the sampler
    made, before any other wrapper (a deformation) sees them."""
    chosen = options(config)
    if chosen.lr > 0 and not reaches_positions(field):
        raise PluginError(
            f"plugins 'camopt' and field '{config.field.name}' ({type(field).__name__}) clash: "
            "the field passes no gradient to sample positions, so poses cannot learn; "
            "choose another field with --set field=NAME"
        )
    base = config.train.lr
    lr_scale = None if chosen.lr == 0 else (chosen.lr / base if base > 0 else 1.0)
    return refine(field, chosen.max_images, lr_scale)


@hookimpl
def atlas_train_start(run: Run) -> None:
    """Record the number of training images; refuse rays that are not in world space."""
    found = find_camopt(run.pipeline)
    if found is None:
        return
    if getattr(run.scene, "space", "box") == "ndc":
        raise ConfigError(
            "plugin 'camopt': data.ndc=true puts the rays in NDC, where a rigid pose "
            "correction is not a rigid motion of the rays; set data.ndc=false (the default "
            "with camopt) or run without camopt"
        )
    try:
        found.set_num_images(len(run.scene.split("train")))
    except ValueError as exc:
        raise ConfigError(f"plugin 'camopt': {exc}") from exc


@hookimpl
def atlas_train_step_end(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Report the mean correction: ``camopt_rotation_deg`` and ``camopt_translation``."""
    found = find_camopt(run.pipeline)
    count = 0 if found is None else int(found.num_images)
    if found is None or count == 0 or step % run.config.train.log_every:
        return
    with torch.no_grad():
        rot, trans = found.rigid(torch.arange(count, device=found.corrections.device))
        run.add_metric("camopt_rotation_deg", math.degrees(float(rotation_angle(rot).mean())))
        run.add_metric("camopt_translation", float(trans.norm(dim=-1).mean()))


@hookimpl
def atlas_train_end(run: Run, metrics: dict[str, Any]) -> None:
    """Write the refined training poses to ``camera_poses.json`` in the run folder."""
    found = find_camopt(run.pipeline)
    if found is None or not run.main:
        return
    views = run.scene.split("train")
    with torch.no_grad():
        refined = found.refined_poses(views.c2w.to(found.corrections.device)).cpu()
    names = list(views.names) or [f"{i:03d}" for i in range(len(views))]
    frames = [
        {"name": name, "given": given.tolist(), "refined": pose.tolist()}
        for name, given, pose in zip(names, views.c2w.cpu(), refined, strict=True)
    ]
    path = run.out / POSES_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({"convention": "camera-to-world, OpenGL", "frames": frames}))
    os.replace(partial, path)
