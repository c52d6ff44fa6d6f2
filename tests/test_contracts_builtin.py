"""The contract kit applied to the core's own components."""

from __future__ import annotations

from atlas_core.testing.contracts import (
    DatasetContract,
    EncodingContract,
    FieldContract,
    LossContract,
    RendererContract,
    SamplerContract,
)


class TestTinyField(FieldContract):
    name = "tiny"
    options = {"width": 16, "depth": 2}
    settings = {"sampler.samples": 8}


class TestPlainField(FieldContract):
    name = "plain"
    options = {"width": 16, "depth": 3, "skips": [1], "head_width": 8}
    settings = {"sampler.samples": 8, "encoding.frequencies": 4}


class TestPositionalEncoding(EncodingContract):
    name = "positional"
    options = {"frequencies": 4, "include_input": False}


class TestIdentityEncoding(EncodingContract):
    name = "identity"
    in_dim = 2


class TestStratifiedSampler(SamplerContract):
    name = "stratified"
    options = {"samples": 8}
    settings = {"field.width": 16}


class TestHierarchicalSampler(SamplerContract):
    name = "hierarchical"
    options = {"coarse": 8, "fine": 8}
    settings = {"field.width": 16}


class TestOccupancySampler(SamplerContract):
    name = "occupancy"
    options = {"resolution": 8, "update_every": 1}
    settings = {"field.width": 16}


class TestVolumeRenderer(RendererContract):
    name = "volume"
    options = {"background": "black"}


class TestLearnedBackgroundRenderer(RendererContract):
    name = "volume"
    options = {"background": "learned"}


class TestRGBL2Loss(LossContract):
    name = "rgb_l2"
    settings = {"field.width": 16, "sampler.samples": 8}


class TestRGBL1Loss(LossContract):
    name = "rgb_l1"
    weight = 0.5
    settings = {"field.width": 16, "sampler": "hierarchical", "sampler.coarse": 4}


class TestBlenderDataset(DatasetContract):
    name = "blender"
    options = {"downscale": 2, "bound": 1.2}
