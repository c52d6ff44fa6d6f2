"""The start-up encoding clash (atlas_core/clashes.py), for every installed plugin that
offers a position encoding: a field with its own encoding would silently ignore it."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from torch import nn

from atlas_core import hookimpl
from atlas_core.config import RunConfig
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import PluginError
from atlas_core.nerf.fields import Field
from atlas_core.nerf.rays import RaySamples

ENCODING_PLUGINS = ("fourier", "siren")  # each claims the encoding slot
INSTALLED = {ep.name for ep in entry_points(group="atlas")}


class OwnEncodingField(Field):
    """A field with its own position encoding (as ngp's hash grid), ignoring the run's."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Linear(3, 4)

    def forward(self, samples: RaySamples) -> dict[str, torch.Tensor]:
        raw = self.mlp(samples.positions)
        return {"density": raw[:, :1].exp(), "rgb": raw[:, 1:].sigmoid()}


class OwnEncodingPlugin:
    name = "owngrid"

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        register("owngrid", OwnEncodingField)

    @hookimpl
    def atlas_configure(self, config) -> None:  # noqa: ANN001
        config.field.name = "owngrid"


@pytest.mark.parametrize("plugin", ENCODING_PLUGINS)
def test_a_field_ignoring_the_encoding_is_a_start_up_clash(
    plugin: str,
    atlas_pm,
    atlas_scene,
    tmp_path,  # noqa: ANN001
) -> None:
    if plugin not in INSTALLED:
        pytest.skip(f"{plugin} not installed")
    loaded = atlas_pm(OwnEncodingPlugin(), enable=(plugin,))
    config = RunConfig()
    config.data.path = str(atlas_scene)
    pattern = rf"plugins '{plugin}' and '.*' clash on the encoding: field 'owngrid'"
    with pytest.raises(PluginError, match=pattern):
        Trainer(config, loaded, tmp_path / "r")
    config = RunConfig()
    config.data.path = str(atlas_scene)
    config.set("encoding", "positional")  # the user's choice: nothing of the plugin is ignored
    assert isinstance(Trainer(config, loaded, tmp_path / "s").pipeline.field, OwnEncodingField)
