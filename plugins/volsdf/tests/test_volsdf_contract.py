"""The volsdf field, eikonal loss and importance sampler meet the core's contracts."""

from __future__ import annotations

from atlas_core.testing import FieldContract, LossContract, SamplerContract

SMALL = {"width": 16, "depth": 3, "skips": [1], "features": 8, "color_width": 8}


class TestVolSDFFieldContract(FieldContract):
    name = "volsdf"
    plugins = ("volsdf",)
    options = SMALL
    settings = {"sampler.samples": 8, "encoding.frequencies": 3}
    required = ("density", "rgb", "sdf", "normals", "sdf_gradients")


class TestEikonalLossContract(LossContract):
    name = "eikonal"
    plugins = ("volsdf",)
    weight = 0.1
    settings = {"field": "volsdf", "sampler.samples": 8, "encoding.frequencies": 3,
                **{f"field.{k}": v for k, v in SMALL.items()}}  # fmt: skip


class TestImportanceSamplerContract(SamplerContract):
    name = "importance"
    plugins = ("volsdf",)
    options = {"coarse": 8, "fine": 8}
    settings = {"encoding.frequencies": 3, **{f"field.{k}": v for k, v in SMALL.items()}}


GRID = {"resolution": 10, "initial_resolution": 6, "upscale_steps": [1], "features": 4, "width": 8,
        "init": "sphere"}  # fmt: skip


class TestVolSDFGridFieldContract(FieldContract):
    name = "volsdf_grid"
    plugins = ("volsdf",)
    options = GRID
    settings = {"sampler": "stratified", "sampler.samples": 8}
    required = ("density", "rgb", "sdf", "normals", "sdf_gradients")


HASH = {"levels": 3, "log2_table": 8, "base_resolution": 4, "finest_resolution": 16, "width": 8,
        "geometry_features": 4, "color_width": 8, "init": "sphere"}  # fmt: skip


class TestVolSDFHashFieldContract(FieldContract):
    name = "volsdf_hash"
    plugins = ("volsdf", "ngp")
    options = HASH
    settings = {"sampler": "stratified", "sampler.samples": 8}
    required = ("density", "rgb", "sdf", "normals", "sdf_gradients")


class TestVolSDFHashWarmUpContract(FieldContract):
    """The default start: the density warm-up (no SDF yet), distilled after one step."""

    name = "volsdf_hash"
    plugins = ("volsdf", "ngp")
    options = {**HASH, "init": "density", "warmup_steps": 1, "warmup_resolution": 8,
               "fit_steps": 3}  # fmt: skip
    settings = {"sampler": "stratified", "sampler.samples": 8}
    required = ("density", "rgb", "normals")  # and empty sdf_gradients, checked below

    def check_outputs(self, outputs: dict, context: object) -> None:
        """As any field's, but the SDF gradients are empty: no SDF exists yet (the eikonal
        term reads that as zero, as during ``volsdf_grid``'s warm-up)."""
        assert outputs["sdf_gradients"].shape == (0, 3)
        rest = {key: value for key, value in outputs.items() if key != "sdf_gradients"}
        super().check_outputs(rest, context)
