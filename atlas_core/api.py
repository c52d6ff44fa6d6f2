"""The public plugin API of NeRF Atlas: the one module a plugin imports.

Everything a plugin needs is here, stable for every 1.x release (a plugin that depends on
``nerf-atlas~=1.0`` works with any later 1.y); tests add ``atlas_core.testing``. Names
deeper in ``atlas_core`` may move between releases. ``docs/design.md`` lists each name.

Registration
    ``hookimpl``, ``Register``: implement hooks, register components by name.
Config and building
    ``RunConfig``, ``Slot``, ``BuildContext``, ``plugin_options``, ``prefer``, ``prefer_occupancy``,
    ``require_encoding``, ``field_owner``.
Data types
    ``RayBundle``, ``RaySamples``, ``SceneData``, ``Views``, ``Run``, ``Pipeline``,
    ``SamplerExtras``, ``COARSE_RGB``, ``COARSE_ACC``.
Base classes
    ``Field``, ``Encoding``, ``Sampler``, ``Renderer``, ``Loss``, ``ColourLoss``,
    ``RGBL2Loss`` (its mean squared error), and ``mask_cross_entropy`` (opacity against
    alpha, for mask losses).
Capabilities and parameter tags
    ``HasDensity``, ``HasSDF``, ``HasSDFGradient``, ``HasSampleStep``, ``Grows``, ``Antialiases``,
    ``RendersViews``, ``ViewRenderer``, ``NeedsCrops``, ``has_density``, ``first_with``,
    ``tag_parameter``, ``parameter_tags``, ``ParameterTags``.
Building blocks
    encodings (``PositionalEncoding``, ``IdentityEncoding``), ``mlp``, ``trunc_exp``,
    compositing (``render_weights``, ``segment_sum``), ``VolumeRenderer``, ``Background``,
    sampling (``stratified_edges``, ``sample_pdf``, ``invert_cdf``, ``samples_from_bins``,
    ``DisplacedSamples``), rays (``make_rays``, ``image_rays``, ``camera_rays``,
    ``pixel_rays``), frustums (``frustum_multisamples``, ``level_weights``), cameras
    (``look_at``, ``focal_from_fov``, ``project``, ``INTRINSICS``), crops
    (``CROP_KEY``, ``BLOCK_KEY``, ``crop_shape``, ``decimate``, ``undo_blocks``), images
    (``read_rgba``, ``downscale_rgba``, ``to_uint8``), the sRGB curve (``linear_to_srgb``,
    ``srgb_to_linear``), C++ kernels built just in time
    (``load_extension``, ``kernel_choice``, ``use_native``, ``cpu_floats``), evaluation
    (``eval_indices``, ``protocol_background``), meshes (``read_ply``,
    ``connected_components``), and three namespaces: ``grid`` (dense voxel grids),
    ``synth`` (procedural scenes) and ``realistic`` (textured, glossy objects on a plate
    under point lights).
The blender reader
    ``load_blender``, ``load_split``, ``read_json``, ``read_images``, ``parse_pose``,
    ``parse_fov``, ``parse_frames``, ``image_file``, ``short``, ``SPLITS``.
The live viewer
    ``ViewerHandle`` (what ``atlas_viewer_setup`` gets).
Errors
    ``AtlasError``, ``ConfigError``, ``DataError``, ``PluginError``, ``first_line``.
"""

from atlas_core import __version__, hookimpl
from atlas_core.build import (
    BuildContext,
    field_owner,
    plugin_options,
    prefer,
    require_encoding,
)
from atlas_core.capabilities import (
    Antialiases,
    Grows,
    HasDensity,
    HasSampleStep,
    HasSDF,
    HasSDFGradient,
    NeedsCrops,
    ParameterTags,
    RendersViews,
    ViewRenderer,
    first_with,
    has_density,
    parameter_tags,
    tag_parameter,
)
from atlas_core.commands.export import connected_components, read_ply
from atlas_core.config import RunConfig, Slot
from atlas_core.data import realistic, synth
from atlas_core.data.blender import (
    SPLITS,
    image_file,
    load_blender,
    load_split,
    parse_fov,
    parse_frames,
    parse_pose,
    read_images,
    read_json,
    short,
)
from atlas_core.data.images import downscale_rgba, read_rgba, to_uint8
from atlas_core.data.scene import SceneData, Views, camera_rays, image_rays, make_rays
from atlas_core.engine.evaluate import eval_indices
from atlas_core.engine.run import Run
from atlas_core.errors import AtlasError, ConfigError, DataError, PluginError, first_line
from atlas_core.hookspecs import Register
from atlas_core.nerf import grid
from atlas_core.nerf.cameras import INTRINSICS, focal_from_fov, look_at, pixel_rays, project
from atlas_core.nerf.colour import linear_to_srgb, srgb_to_linear
from atlas_core.nerf.compositing import render_weights, segment_sum
from atlas_core.nerf.crops import BLOCK_KEY, CROP_KEY, crop_shape, decimate, undo_blocks
from atlas_core.nerf.encodings import Encoding, IdentityEncoding, PositionalEncoding
from atlas_core.nerf.fields import Field
from atlas_core.nerf.frustums import frustum_multisamples, level_weights
from atlas_core.nerf.losses import ColourLoss, Loss, RGBL2Loss, mask_cross_entropy
from atlas_core.nerf.mlp import mlp, trunc_exp
from atlas_core.nerf.native import cpu_floats, kernel_choice, load_extension, use_native
from atlas_core.nerf.occupancy import prefer_occupancy
from atlas_core.nerf.pipeline import Pipeline, protocol_background
from atlas_core.nerf.rays import (
    DisplacedSamples,
    RayBundle,
    RaySamples,
    clip_to_box,
    samples_from_bins,
)
from atlas_core.nerf.renderers import Background, Renderer, VolumeRenderer
from atlas_core.nerf.samplers import (
    COARSE_ACC,
    COARSE_RGB,
    Sampler,
    SamplerExtras,
    invert_cdf,
    sample_pdf,
    stratified_edges,
)
from atlas_core.viewer.handle import ViewerHandle

__all__ = [
    "BLOCK_KEY",
    "COARSE_ACC",
    "COARSE_RGB",
    "CROP_KEY",
    "INTRINSICS",
    "SPLITS",
    "Antialiases",
    "AtlasError",
    "Background",
    "BuildContext",
    "ColourLoss",
    "ConfigError",
    "DataError",
    "DisplacedSamples",
    "Encoding",
    "Field",
    "Grows",
    "HasDensity",
    "HasSDF",
    "HasSDFGradient",
    "HasSampleStep",
    "IdentityEncoding",
    "Loss",
    "NeedsCrops",
    "ParameterTags",
    "Pipeline",
    "PluginError",
    "PositionalEncoding",
    "RGBL2Loss",
    "RayBundle",
    "RaySamples",
    "Register",
    "Renderer",
    "RendersViews",
    "Run",
    "RunConfig",
    "Sampler",
    "SamplerExtras",
    "SceneData",
    "Slot",
    "ViewRenderer",
    "ViewerHandle",
    "Views",
    "VolumeRenderer",
    "__version__",
    "camera_rays",
    "clip_to_box",
    "connected_components",
    "cpu_floats",
    "crop_shape",
    "decimate",
    "downscale_rgba",
    "eval_indices",
    "field_owner",
    "first_line",
    "first_with",
    "focal_from_fov",
    "frustum_multisamples",
    "grid",
    "has_density",
    "hookimpl",
    "image_file",
    "image_rays",
    "invert_cdf",
    "load_blender",
    "load_split",
    "kernel_choice",
    "level_weights",
    "linear_to_srgb",
    "load_extension",
    "look_at",
    "make_rays",
    "mask_cross_entropy",
    "mlp",
    "parameter_tags",
    "parse_fov",
    "parse_frames",
    "parse_pose",
    "pixel_rays",
    "project",
    "plugin_options",
    "prefer_occupancy",
    "protocol_background",
    "read_images",
    "read_json",
    "read_ply",
    "read_rgba",
    "render_weights",
    "prefer",
    "require_encoding",
    "sample_pdf",
    "samples_from_bins",
    "segment_sum",
    "short",
    "srgb_to_linear",
    "stratified_edges",
    "realistic",
    "synth",
    "tag_parameter",
    "to_uint8",
    "trunc_exp",
    "undo_blocks",
    "use_native",
]
