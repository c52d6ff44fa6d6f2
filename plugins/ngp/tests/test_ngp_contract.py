"""The ngp field and hash encoding meet the core's component contracts."""

from __future__ import annotations

from atlas_core.testing import EncodingContract, FieldContract, SamplerContract

SMALL = {"levels": 4, "log2_table": 12, "finest_resolution": 64}


class TestNGPFieldContract(FieldContract):
    name = "ngp"
    plugins = ("ngp",)
    options = {**SMALL, "hidden": 16}
    settings = {"sampler": "stratified", "sampler.samples": 8}


class TestNGPFieldBFloat16Contract(FieldContract):
    name = "ngp"
    plugins = ("ngp",)
    options = {**SMALL, "hidden": 16, "precision": "bfloat16"}
    settings = {"sampler": "stratified", "sampler.samples": 8}


class TestHashEncodingContract(EncodingContract):
    name = "hash"
    plugins = ("ngp",)
    options = {**SMALL, "features": 4}


class TestNGPOccupancyContract(SamplerContract):
    """The occupancy grid over the ngp field."""

    name = "occupancy"
    plugins = ("ngp",)
    options = {"resolution": 16, "update_every": 1}
    settings = {"field.levels": 4, "field.log2_table": 12, "field.hidden": 16}
