"""Setting a run up: its device, its scene, and checks of its losses and batches."""

from __future__ import annotations

from typing import Any

import torch

from atlas_core.build import call_factory
from atlas_core.capabilities import NeedsCrops
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.errors import AtlasError, ConfigError
from atlas_core.nerf.crops import ray_stride
from atlas_core.plugins import AtlasPlugins
from atlas_core.registry import unknown_choice

__all__ = [
    "check_batch",
    "check_losses",
    "check_scales",
    "crop_side",
    "load_scene",
    "resolve_device",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise AtlasError("--device cuda: no CUDA device is available (use auto or cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cpu" and torch.get_num_threads() == 1:
        # oneDNN's convolution backward corrupts the heap on one thread in the torch 2.13
        # CPU wheel (pixelNeRF's encoder under OMP_NUM_THREADS=1 aborted with "double
        # free"); torch's own convolution is used instead.
        torch.backends.mkldnn.enabled = False
    return device


def load_scene(config: RunConfig, plugins: AtlasPlugins) -> SceneData:
    """Load the run's data through its registered data kind."""
    if not config.data.path:
        raise AtlasError("no data: pass --data DIR (make one with `atlas data synth DIR`)")
    from atlas_core.data.layout import detect_kind, is_auto

    if is_auto(config.data.kind):  # the folder's layout picks the kind; the run records it
        config.data.kind, why = detect_kind(config.data.path, plugins.registry)
        print(f"atlas: data kind '{config.data.kind}' ({why})", flush=True)
    component = plugins.registry.get("datasets", config.data.kind)
    what = f"data kind '{config.data.kind}'"
    options, path = config.data.options, config.data.path
    scene = call_factory(component.factory, what, "data", options, path=path)
    from atlas_core.data.scene_type import configure_space

    scene, why = configure_space(scene, config.data.ndc, config.data.contract)
    print(f"atlas: {why}", flush=True)  # the run records the space it chose
    config.data.ndc, config.data.contract = scene.space == "ndc", scene.space == "contract"
    add_distortion(config, scene.space)
    return scene


DISTORTION_WEIGHT = 0.01  # Mip-NeRF 360's lambda (Barron et al. 2022, sec. 6)


def add_distortion(config: RunConfig, space: str) -> None:
    """Unbounded captures get Mip-NeRF 360's distortion loss unless the run names it (its
    floaters and background fog; measured in benchmarks/results/real-*.md); only the
    ``volume`` renderer gives the sample intervals it needs."""
    if space != "contract" or "distortion" in config.losses or config.renderer.name != "volume":
        return
    config.losses["distortion"] = DISTORTION_WEIGHT
    print(f"atlas: losses.distortion={DISTORTION_WEIGHT} (unbounded scene; =0 turns it off)")


def check_losses(config: RunConfig, plugins: AtlasPlugins) -> None:
    """Every loss term in the config must be a registered loss."""
    names = plugins.registry.names("losses")
    for name in config.losses:
        if name not in names:
            raise ConfigError(unknown_choice(f"loss 'losses.{name}'", name, names))


def check_scales(config: RunConfig, error_sampling: bool, views: Any) -> None:
    """``train.scales`` > 1 draws single rays at random scales: no crops, no error map,
    and the coarsest scale keeps a pixel."""
    if config.train.scales == 1:
        return
    factor = 2 ** (config.train.scales - 1)
    if factor > min(views.height, views.width):
        raise ConfigError(
            f"train.scales={config.train.scales}: a 1/{factor} scale of the "
            f"{views.width}x{views.height} training images has no pixel"
        )
    if config.train.batch != "rays":
        raise ConfigError("train.scales draws single rays at several scales: set train.batch=rays")
    if error_sampling:
        raise ConfigError("train.scales and train.error_sampling cannot be combined")
    if config.train.pixel_jitter:
        raise ConfigError("train.scales and train.pixel_jitter cannot be combined")


def check_batch(config: RunConfig, pipeline: torch.nn.Module, views: Any) -> None:
    """Image losses need crop batches; crops must fit the training images; jittered rays
    are single rays, and a jitter start needs jitter."""
    train = config.train
    if train.pixel_jitter_start and not train.pixel_jitter:
        raise ConfigError(
            "train.pixel_jitter_start does nothing without train.pixel_jitter=true: set both"
        )
    if train.pixel_jitter and train.batch != "rays":
        raise ConfigError(
            "train.pixel_jitter moves single rays within their pixels: set train.batch=rays"
        )
    if train.batch == "rays":
        needing = [
            name
            for name, loss in pipeline.losses.items()
            if isinstance(loss, NeedsCrops) and loss.needs_crops
        ]
        if needing:
            raise ConfigError(
                f"losses.{needing[0]} compares image crops, but train.batch=rays draws "
                "scattered rays: set train.batch=crops (with train.crop_size) or views"
            )
    elif "train.crop_size" in config.explicit and train.crop_size > min(views.height, views.width):
        raise ConfigError(
            f"train.crop_size={train.crop_size} exceeds the training images "
            f"({views.height}x{views.width})"
        )
    stride = ray_stride(pipeline)
    if stride > 1:  # the renderer upsamples: whole blocks of stride x stride pixels
        if train.batch == "rays":
            raise ConfigError(
                f"the renderer renders one ray per {stride}x{stride} block and upsamples: "
                "set train.batch=crops or views"
            )
        side = crop_side(config, views, stride)
        sides = (side,) if train.batch == "crops" else (views.height, views.width)
        if any(side % stride for side in sides):
            what = f"train.crop_size={train.crop_size}" if train.batch == "crops" else "image size"
            raise ConfigError(f"{what} must be a multiple of the renderer's ray stride {stride}")


def crop_side(config: RunConfig, views: Any, stride: int = 1) -> int:
    """``train.crop_size``; left at its default, at most the images' shorter side (rounded
    down to a multiple of the renderer's ray stride)."""
    size = config.train.crop_size
    if "train.crop_size" in config.explicit:
        return size
    shortest = min(views.height, views.width)
    return max(stride, min(size, shortest) // stride * stride)
