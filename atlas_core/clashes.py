"""Start-up checks that name both plugins when one's component would be silently unused."""

from __future__ import annotations

from torch import nn

from atlas_core.config import RunConfig
from atlas_core.errors import PluginError
from atlas_core.fields import Field


def field_owner(field: nn.Module) -> str:
    """The plugin that supplies the innermost field (wrappers such as D-NeRF skipped)."""
    fields = [m for m in field.modules() if isinstance(m, Field)] or [field]
    inner = next(f for f in fields if not any(isinstance(c, Field) for c in f.children()))
    package = type(inner).__module__.split(".")[0]
    return "core" if package == "atlas_core" else package.removeprefix("atlas_plugin_")


def require_encoding(
    field: nn.Module, config: RunConfig, plugin: str, name: str, kind: type
) -> None:
    """Stop when the run's encoding is ``plugin``'s ``name`` but ``field`` holds no ``kind``."""
    if config.encoding.name != name or any(isinstance(m, kind) for m in field.modules()):
        return
    raise PluginError(
        f"plugins '{plugin}' and '{field_owner(field)}' clash on the encoding: field "
        f"'{config.field.name}' has its own position encoding, so the '{name}' encoding "
        "would be ignored; choose a field that takes the run's encoding "
        "(--set field=tiny, plain, ...) or another encoding (--set encoding=NAME)"
    )
