"""Built-in plugin ``core``: the plain NeRF components."""

from __future__ import annotations

from atlas_core import hookimpl
from atlas_core.data.blender import load_blender
from atlas_core.data.colmap import load_colmap
from atlas_core.data.layout import detect_blender, detect_colmap, detect_llff, detect_nerfstudio
from atlas_core.data.llff import load_llff
from atlas_core.data.nerfstudio import load_nerfstudio
from atlas_core.data.synth import write_blender
from atlas_core.hookspecs import Register
from atlas_core.nerf.distortion import DistortionLoss
from atlas_core.nerf.encodings import IdentityEncoding, PositionalEncoding
from atlas_core.nerf.fields import NeRFField, TinyField
from atlas_core.nerf.image_losses import FFTLoss, MSSSIMLoss, SSIMLoss
from atlas_core.nerf.losses import RGBL1Loss, RGBL2Loss, RGBRMSELoss
from atlas_core.nerf.occupancy import OccupancySampler
from atlas_core.nerf.renderers import VolumeRenderer
from atlas_core.nerf.samplers import HierarchicalSampler, StratifiedSampler

__all__ = [
    "atlas_register_datasets",
    "atlas_register_encodings",
    "atlas_register_fields",
    "atlas_register_losses",
    "atlas_register_renderers",
    "atlas_register_samplers",
]


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """Positional (NeRF) and identity encodings."""
    register("positional", PositionalEncoding, description="NeRF sin/cos frequencies + input")
    register("identity", IdentityEncoding, description="raw coordinates")


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The NeRF MLP and a tiny MLP."""
    register("plain", NeRFField, description="NeRF 8x256 MLP, skip, view-direction branch")
    register("tiny", TinyField, description="one small MLP for density and colour")


@hookimpl
def atlas_register_samplers(register: Register) -> None:
    """Stratified, hierarchical (coarse/fine) and occupancy-grid sampling."""
    register("stratified", StratifiedSampler, description="jittered uniform bins")
    register("hierarchical", HierarchicalSampler, description="NeRF coarse/fine resampling")
    register("occupancy", OccupancySampler, description="occupancy grid, skips empty space")


@hookimpl
def atlas_register_renderers(register: Register) -> None:
    """Volume rendering."""
    register("volume", VolumeRenderer, description="alpha compositing, four backgrounds")


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """Colour losses, per ray and (with crop batches) per image."""
    register("rgb_l2", RGBL2Loss, description="mean squared colour error")
    register("rgb_l1", RGBL1Loss, description="mean absolute colour error")
    register("rgb_rmse", RGBRMSELoss, description="root mean squared colour error")
    register("distortion", DistortionLoss, description="Mip-NeRF 360 distortion (weights compact)")
    register("fft", FFTLoss, description="L1 between FFT magnitudes of crops (needs crops)")
    register("ssim", SSIMLoss, description="1 - SSIM of crops (needs crops)")
    register("ms_ssim", MSSSIMLoss, description="1 - multi-scale SSIM of crops (needs crops)")


@hookimpl
def atlas_register_datasets(register: Register) -> None:
    """NeRF-synthetic folders and real captures (in data.kind=auto's detection order)."""
    register("blender", load_blender, description="NeRF-synthetic transforms_*.json + PNGs",
             synth=write_blender, detect=detect_blender)  # fmt: skip
    register("nerfstudio", load_nerfstudio, detect=detect_nerfstudio,
             description="nerfstudio/instant-ngp transforms.json, OPENCV lens")  # fmt: skip
    register("llff", load_llff, detect=detect_llff,
             description="LLFF poses_bounds.npy + images/ (forward-facing captures)")  # fmt: skip
    register("colmap", load_colmap, detect=detect_colmap,
             description="COLMAP sparse/0 model (binary or text) + images/")  # fmt: skip
