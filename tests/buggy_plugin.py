"""Importable plugins with bugs, exposed through fake entry points by the failure tests."""

from __future__ import annotations

from torch import Tensor

from atlas_core import hookimpl
from atlas_core.errors import ConfigError
from atlas_core.nerf.fields import TinyField


class HookBug:
    """Raises a plain exception in a lifecycle hook: a bug in the plugin."""

    @hookimpl
    def atlas_train_start(self) -> None:
        """Fails."""
        raise ValueError("counted the wrong rays")


class UserError:
    """Raises an AtlasError in a lifecycle hook: a user error."""

    @hookimpl
    def atlas_train_start(self) -> None:
        """Refuses the run."""
        raise ConfigError("this scene needs buggy.level >= 2")


class DividingField(TinyField):
    """A field whose forward pass divides by zero."""

    def forward(self, samples) -> dict[str, Tensor]:  # noqa: ANN001
        """Fails."""
        return {"density": 1 // 0}


class ComponentBug:
    """Registers the failing field."""

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        """The ``dividing`` field."""
        register("dividing", DividingField)


hook_bug, user_error, component_bug = HookBug(), UserError(), ComponentBug()
