"""The contract kit applied to the core's own components."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor, nn

from atlas_core import hookimpl
from atlas_core.build import BuildContext
from atlas_core.nerf.fields import Field
from atlas_core.nerf.rays import RaySamples
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


class TestTinyFieldWithTimes(FieldContract):
    """Rays of a dynamic scene carry times; a static field ignores them."""

    name = "tiny"
    options = {"width": 8}
    with_times = True

    def run(self, component, context):  # noqa: ANN001, ANN201
        assert self.make_rays(context).times is not None
        return super().run(component, context)


# -- the kit catches broken components ------------------------------------------------


class OutOfRangeField(Field):
    """Colour without a sigmoid."""

    def __init__(self, context: BuildContext) -> None:
        super().__init__()
        self.encoding = context.make_encoding(3)
        self.linear = nn.Linear(self.encoding.out_dim, 4)

    def raw(self, samples: RaySamples) -> Tensor:
        return self.linear(self.encoding(samples.positions))

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        raw = self.raw(samples)
        return {"density": raw[:, :1].exp(), "rgb": 10 * raw[:, 1:]}


class UnseededField(OutOfRangeField):
    """Noise from a generator that the run's seed does not control."""

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        noise = torch.rand(1, generator=torch.Generator().manual_seed(next(COUNTER)))
        raw = self.raw(samples) + noise
        return {"density": raw[:, :1].exp(), "rgb": raw[:, 1:].sigmoid()}


class NaNGradientField(OutOfRangeField):
    """sqrt at zero: a finite value with an infinite gradient."""

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        raw = self.raw(samples)
        return {"density": torch.sqrt(0 * raw[:, :1]), "rgb": raw[:, 1:].sigmoid()}


COUNTER = itertools.count()


class Mutants:
    name = "mutants"

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        register("out_of_range", OutOfRangeField)
        register("unseeded", UnseededField)
        register("nan_gradient", NaNGradientField)


@pytest.mark.parametrize(
    ("field", "check", "message"),
    [
        ("out_of_range", "test_output_keys_and_shapes", "rgb outside"),
        ("unseeded", "test_deterministic_under_seed", "differs"),
        ("nan_gradient", "test_finite_gradients", "NaN or Inf"),
    ],
)
def test_kit_catches_a_broken_field(field: str, check: str, message: str) -> None:
    contract = type("Contract", (FieldContract,), {"name": field, "extra": (("m", Mutants()),)})
    contract().test_registered()
    with pytest.raises(AssertionError, match=message):
        getattr(contract(), check)()
