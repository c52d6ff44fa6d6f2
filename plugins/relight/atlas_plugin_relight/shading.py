"""What both relight renderers shade with: the run's SDF, the material, the lights and
their learned gain, and the shadow test."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import Tensor, nn

from atlas_core.api import ConfigError, RayBundle, has_density, linear_to_srgb
from atlas_plugin_relight.lights import LightGain, make_light
from atlas_plugin_relight.material import Material
from atlas_plugin_relight.options import RelightOptions
from atlas_plugin_relight.shadows import make_shadow
from atlas_plugin_relight.surface import find_sdf

if TYPE_CHECKING:
    from atlas_core.api import BuildContext


def shadow_density(
    options: RelightOptions, field: nn.Module, what: str, name: str
) -> Callable[[Tensor], Tensor] | None:
    """The field's density (the core's ``HasDensity``) where ``relight.shadow=volume``
    sums it along shadow rays, else None; a ConfigError for a field without one."""
    if options.shadow != "volume":
        return None
    if not has_density(field):
        raise ConfigError(
            f"{what}: relight.shadow=volume needs a field with a density, but field "
            f"{name!r} has none; use relight.shadow=hard"
        )
    return field.density


class Shading:
    """Mixin for an ``nn.Module`` renderer: ``material``, ``light``, ``gain``, ``shadow``,
    ``encode`` (the images' tone curve)."""

    def init_shading(self, context: BuildContext, what: str) -> RelightOptions:
        """Build the parts from ``relight.*`` (``what`` names the renderer in errors)."""
        from atlas_core.api import plugin_options

        options = plugin_options(context.config, "relight", RelightOptions)
        name = context.config.field.name
        field = find_sdf(context.field_module(), what, name)
        self._sdf = [field]  # not a submodule
        self.material = Material(options, tuple(context.scene.bounds))
        self.light = make_light(options)
        self.gain = LightGain(options.learn_gain)
        extinction = shadow_density(options, field, what, name)
        self.shadow = make_shadow(options, self.sdf, tuple(context.scene.bounds), extinction)
        self.tonemap = options.tonemap  # auto was resolved in atlas_configure
        return options

    def encode(self, rgb: Tensor) -> Tensor:
        """Linear light as the images store it (``relight.tonemap``)."""
        return linear_to_srgb(rgb) if self.tonemap == "srgb" else rgb

    def sdf(self, positions: Tensor) -> Tensor:
        """The field's signed distance at positions [M, 3]."""
        return self._sdf[0].sdf(positions)

    def lights(self, rays: RayBundle) -> tuple[Tensor, Tensor]:
        """Each ray's light positions [R, L, 3] and power [R, L, 3], gain included."""
        positions, power = self.light(rays)
        return positions, self.gain(power)
