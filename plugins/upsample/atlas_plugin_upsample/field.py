"""FeatureField: any field plus a feature vector per sample (GIRAFFE's feature field)."""

from __future__ import annotations

from torch import Tensor, nn

from atlas_core.api import PositionalEncoding, RaySamples, has_density, mlp


class FeatureField(nn.Module):
    """Wraps a field; adds ``features`` [N, F] from a small MLP of the encoded position.

    Niemeyer and Geiger 2021 (GIRAFFE, sec. 3.3) render a feature vector instead of a
    colour; here the wrapped field keeps its colour (so the rendered rgb stays a usable
    low-resolution image) and F extra channels carry what the upsampler needs.
    """

    def __init__(self, field: nn.Module, features: int, frequencies: int = 4, width: int = 32):
        super().__init__()
        self.inner = field
        self.features = features
        if features:
            self.encoding = PositionalEncoding(3, frequencies)
            self.head = mlp(self.encoding.out_dim, width, 1, features)

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """The wrapped field's outputs plus ``features``."""
        outputs = dict(self.inner(samples))
        if self.features:
            outputs["features"] = self.head(self.encoding(samples.positions))
        return outputs


class DensityFeatureField(FeatureField):
    """A FeatureField over a field with ``density()`` (for occupancy-grid sampling)."""

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """The wrapped field's density [N, 1]."""
        return self.inner.density(positions, times)


def feature_field(field: nn.Module, features: int) -> FeatureField:
    """Wrap ``field``, keeping its ``density()`` when it has one."""
    wrapper = DensityFeatureField if has_density(field) else FeatureField
    return wrapper(field, features)
