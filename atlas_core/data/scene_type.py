"""Scene type from the cameras: forward-facing (NDC rays), unbounded 360 (contraction) or a
bounded object (the scene box), and the change of world frame each type needs.

Rules, on every view's camera (train and test):

- forward-facing: every camera looks within ``FORWARD_DEGREES`` of the mean viewing
  direction and the camera centres spread less than ``FORWARD_SPREAD`` times the
  content's near depth (measured depths), or than half that times the distance at which
  the optical axes meet (cameras only; axes that never meet count as far). Fewer than
  three cameras tell nothing: the box is kept. NeRF renders such scenes in
  normalised device coordinates (Mildenhall et al. 2020, appendix C).
- unbounded 360: not forward-facing, the cameras surround a centre (their directions
  spread past ``FORWARD_DEGREES``), and the measured content reaches past the far side
  of the camera ring: the far depth exceeds ``UNBOUNDED_REACH`` times the ring's diameter.
  Mip-NeRF 360's contraction (Barron et al. 2022, eq. 10) then maps all of space into a
  ball of radius 2. Without measured depths (no ``poses_bounds.npy``, no sparse points)
  the cameras alone cannot tell an object from a scene around it, and the box is kept;
  ``data.contract=true`` chooses contraction.
- otherwise a bounded object: the scene box as loaded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from atlas_core.data.scene import SceneData
from atlas_core.errors import ConfigError
from atlas_core.nerf.cameras import INTRINSICS
from atlas_core.nerf.contraction import CONTRACTED_BOUNDS
from atlas_core.nerf.ndc import NDCFrame, ndc_rays

__all__ = [
    "CONTRACT_FAR",
    "FORWARD_DEGREES",
    "FORWARD_SPREAD",
    "NDC_NEAR",
    "UNBOUNDED_REACH",
    "UNMEASURED_NEAR",
    "CameraStats",
    "camera_stats",
    "choose_space",
    "configure_space",
    "detect_scene_type",
    "to_contracted",
    "to_ndc",
]

FORWARD_DEGREES = 40.0
FORWARD_SPREAD = 0.5
UNBOUNDED_REACH = 1.25
NDC_NEAR = 1.0  # NeRF's ndc_rays(near=1.) after the LLFF scaling
NDC_CONTENT_NEAR = 1.2  # nearest ray depth after LLFF's scaling (0.9 / 0.75)
UNMEASURED_NEAR = 3.0  # content depth / camera spread assumed without measured depths
CONTRACT_FAR = 1e3  # rays of contracted scenes end here (scene units, cameras in radius 1)
SPACE_NAMES = {"box": "scene box", "ndc": "NDC rays", "contract": "contracted space"}
TYPE_SPACE = {"forward-facing": "ndc", "unbounded 360": "contract", "bounded object": "box"}


@dataclass
class CameraStats:
    """Numbers the rules look at, in the scene's world units."""

    count: int
    max_angle: float  # degrees between a camera's viewing direction and the mean one
    spread: float  # largest distance of a camera centre from their mean
    focus: np.ndarray | None  # the point nearest every optical axis, None when they never meet
    focus_distance: float  # mean distance of the cameras from the focus (inf without one)
    ring_radius: float  # mean distance of the cameras from the focus (or their mean)


def all_poses(scene: SceneData) -> np.ndarray:
    """Camera-to-world [N, 4, 4] of every split, float64."""
    seen = {id(v): v for v in scene.splits.values()}.values()
    return np.concatenate([v.c2w.double().cpu().numpy() for v in seen])


def camera_stats(c2w: np.ndarray) -> CameraStats:
    """Viewing-direction spread, centre spread and where the optical axes meet."""
    views = -c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=1, keepdims=True)
    centres = c2w[:, :3, 3]
    mean = views.sum(axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
    angles = np.degrees(np.arccos(np.clip(views @ mean, -1.0, 1.0)))
    spread = float(np.linalg.norm(centres - centres.mean(axis=0), axis=1).max())
    # least squares point of the axes: sum (I - v v^T) (p - c) = 0
    projectors = np.eye(3)[None] - views[:, :, None] * views[:, None, :]
    system = projectors.sum(axis=0)
    focus = None
    if np.linalg.eigvalsh(system / len(views)).min() > 0.02:  # axes not (nearly) parallel
        point = np.linalg.solve(system, np.einsum("nij,nj->i", projectors, centres))
        ahead = np.einsum("ni,ni->n", point - centres, views)
        focus = point if float(np.median(ahead)) > 0 else None  # in front of the cameras
    anchor = centres.mean(axis=0) if focus is None else focus
    radius = float(np.linalg.norm(centres - anchor, axis=1).mean())
    distance = math.inf if focus is None else radius
    return CameraStats(len(c2w), float(angles.max()), spread, focus, distance, radius)


def detect_scene_type(scene: SceneData) -> tuple[str, str]:
    """``(type, why)``: ``forward-facing``, ``unbounded 360`` or ``bounded object``."""
    stats = camera_stats(all_poses(scene))
    measured = scene.measured_depths
    n, angle = stats.count, stats.max_angle
    if n < 3:
        return "bounded object", f"{n} camera(s): too few to tell the scene type"
    if angle <= FORWARD_DEGREES:
        depth = scene.near if measured else stats.focus_distance
        what = f"near depth {scene.near:.3g}" if measured else "where the optical axes meet"
        if not measured and math.isinf(depth):
            what = "optical axes that never meet"
        factor = FORWARD_SPREAD if measured else FORWARD_SPREAD / 2  # stricter on cameras only
        if stats.spread < factor * depth:
            return "forward-facing", (
                f"all {n} cameras within {angle:.0f} deg of one direction, centres spread "
                f"{stats.spread:.3g} < {factor} x {what}"
            )
        reason = f"centres spread {stats.spread:.3g} >= {factor} x {what}"
        return "bounded object", f"{n} cameras within {angle:.0f} deg of one direction but {reason}"
    ring = 2.0 * stats.ring_radius
    if not measured:
        return "bounded object", (
            f"{n} cameras up to {angle:.0f} deg apart around a centre; no measured depths "
            "tell an object from a scene around it (data.contract=true for unbounded scenes)"
        )
    if scene.far > UNBOUNDED_REACH * ring:
        return "unbounded 360", (
            f"{n} cameras up to {angle:.0f} deg apart around a centre; content reaches depth "
            f"{scene.far:.3g} > {UNBOUNDED_REACH} x the camera ring's diameter {ring:.3g}"
        )
    return "bounded object", (
        f"{n} cameras up to {angle:.0f} deg apart around a centre; content within depth "
        f"{scene.far:.3g} <= {UNBOUNDED_REACH} x the camera ring's diameter {ring:.3g}"
    )


def choose_space(scene: SceneData, ndc: Any = "auto", contract: Any = "auto") -> tuple[str, str]:
    """The ray space (``box``, ``ndc``, ``contract``) and the one line that says why."""
    if ndc is True and contract is True:
        raise ConfigError("data.ndc=true and data.contract=true: choose one ray space")
    kind, why = detect_scene_type(scene)
    space = TYPE_SPACE[kind]
    note = ""
    if ndc is True or contract is True:
        space = "ndc" if ndc is True else "contract"
        option = "data.ndc=true" if ndc is True else "data.contract=true"
        note = "" if space == TYPE_SPACE[kind] else f"; {option} overrides"
    elif (space == "ndc" and ndc is False) or (space == "contract" and contract is False):
        option = "data.ndc=false" if space == "ndc" else "data.contract=false"
        space, note = "box", f"; {option} overrides"
    return space, f"scene type: {kind} ({why}) -> {SPACE_NAMES[space]}{note}"


def ndc_frame(scene: SceneData) -> NDCFrame:
    """The training views' single pinhole camera, or a ConfigError naming the problem."""
    views = scene.split("train")
    width, height, focal = views.width, views.height, float(views.focal)
    intrinsics = views.extras.get(INTRINSICS)
    if intrinsics is not None:
        fx, fy, cx, cy = intrinsics.double().unbind(-1)
        same = torch.allclose(fx, fx[:1].expand_as(fx), rtol=1e-4) and torch.allclose(fy, fx)
        centred = bool(((cx - width / 2).abs() < 0.5).all() & ((cy - height / 2).abs() < 0.5).all())
        if not same or not centred:
            raise ConfigError(
                f"{scene.name}: NDC rays need one pinhole camera with equal fx, fy and the "
                "principal point at the image centre; these views differ "
                "(set data.ndc=false)"
            )
        focal = float(fx[0])
    return NDCFrame(focal, width, height, NDC_NEAR)


def _move(scene: SceneData, world: np.ndarray, **changes: Any) -> SceneData:
    """The scene with every pose mapped by the similarity ``world`` [4, 4] (uniform scale)."""
    matrix = torch.from_numpy(world)
    splits = {}
    for label, views in scene.splits.items():
        c2w = (matrix @ views.c2w.double().cpu()).to(views.c2w)
        scale = float(np.cbrt(np.linalg.det(world[:3, :3])))
        c2w[:, :3, :3] /= scale  # keep rotations orthonormal
        splits[label] = dataclasses.replace(views, c2w=c2w)
    return dataclasses.replace(scene, splits=splits, **changes)


def to_ndc(scene: SceneData) -> SceneData:
    """World moved into the mean camera's frame and scaled so the nearest ray depth is
    ``NDC_CONTENT_NEAR`` (as the LLFF loader already does), then the NDC scene: ``t``
    0..1 and the box around every view's NDC frustum (from the near plane to infinity,
    as DVGO bounds its NDC grid). Without measured depths the nearest content is taken
    to lie ``UNMEASURED_NEAR`` times the cameras' spread away (flower: 1.2 / 0.37)."""
    from atlas_core.data.llff import average_pose

    frame = ndc_frame(scene)
    near = scene.near
    if not scene.measured_depths:  # a default near says nothing: LLFF's content sits about
        near = max(near, UNMEASURED_NEAR * camera_stats(all_poses(scene)).spread)  # 3x spread
    scale = NDC_CONTENT_NEAR / near
    world = np.diag([scale, scale, scale, 1.0]) @ np.linalg.inv(average_pose(all_poses(scene)))
    moved = _move(scene, world)
    points = []
    for views in {id(v): v for v in moved.splits.values()}.values():
        w, h = views.width, views.height
        corners = torch.tensor([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h], [w / 2, h / 2]])
        fx = frame.focal * w / frame.width
        cam = torch.stack(
            [(corners[:, 0] - w / 2) / fx, -(corners[:, 1] - h / 2) / fx, -torch.ones(5)], -1
        ).double()
        c2w = views.c2w.double()
        dirs = torch.einsum("nij,kj->nki", c2w[:, :3, :3], cam).reshape(-1, 3)
        origins = c2w[:, None, :3, 3].expand(-1, 5, 3).reshape(-1, 3)
        o, d = ndc_rays(origins, dirs / dirs.norm(dim=-1, keepdim=True), frame)
        points += [o, o + d]
    allp = torch.cat(points)
    low = allp.amin(0).clamp(max=-1.0) - 1e-3
    high = allp.amax(0).clamp(min=1.0) + 1e-3
    low[2], high[2] = -1.0 - 1e-3, 1.0 + 1e-3
    bounds = (*low.tolist(), *high.tolist())
    return dataclasses.replace(
        moved, space="ndc", ndc_frame=frame, near=0.0, far=1.0, bounds=bounds
    )


def to_contracted(scene: SceneData) -> SceneData:
    """World centred where the optical axes meet (else on the cameras' mean) and scaled so
    every camera lies in the unit ball; rays to ``CONTRACT_FAR``; the contracted box."""
    poses = all_poses(scene)
    stats = camera_stats(poses)
    centre = poses[:, :3, 3].mean(axis=0) if stats.focus is None else stats.focus
    radius = float(np.linalg.norm(poses[:, :3, 3] - centre, axis=1).max())
    scale = 1.0 / max(radius, 1e-9)
    world = np.eye(4)
    world[:3, :3] *= scale
    world[:3, 3] = -scale * centre
    near = scene.near * scale
    return _move(
        scene, world, space="contract", near=near, far=CONTRACT_FAR, bounds=CONTRACTED_BOUNDS
    )


def configure_space(
    scene: SceneData, ndc: Any = "auto", contract: Any = "auto"
) -> tuple[SceneData, str]:
    """The scene in the ray space the cameras (or the options) choose, and the line why."""
    if scene.space != "box":  # already moved (a data kind may choose its own space)
        return scene, f"scene type: set by the data kind -> {SPACE_NAMES[scene.space]}"
    space, line = choose_space(scene, ndc, contract)
    if space == "ndc":
        return to_ndc(scene), line
    if space == "contract":
        return to_contracted(scene), line
    return scene, line
