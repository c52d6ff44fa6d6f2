"""``atlas plugins install NAME``: pip-install plugins by their short name (as ``llm install``).

``NAME`` means the distribution ``atlas-plugin-NAME`` (a version or extras may follow,
``dnerf==1.0.0``); a full distribution name, a path or a URL is passed to pip as it is.
pip runs in this interpreter, so the plugin lands where ``atlas`` is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from atlas_core.errors import AtlasError

__all__ = ["PREFIX", "distribution", "install", "pip_command"]

PREFIX = "atlas-plugin-"
SHORT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<rest>(\[[^\]]*\])?([<>=!~;].*)?)$")


def distribution(spec: str) -> str:
    """The pip requirement for a plugin name: ``dnerf`` -> ``atlas-plugin-dnerf``."""
    spec = spec.strip()
    if not spec:
        raise AtlasError("atlas plugins install: empty plugin name")
    if "/" in spec or "\\" in spec or spec.startswith(".") or Path(spec).exists():
        return spec  # a path or a URL
    match = SHORT.match(spec)
    if match is None:
        raise AtlasError(f"atlas plugins install: '{spec}' is not a plugin name or pip spec")
    name = match["name"]
    normal = name.lower().replace("_", "-")
    if normal.startswith(PREFIX) or normal == "nerf-atlas":
        return spec
    return f"{PREFIX}{name}{match['rest']}"


def pip_command(
    names: Sequence[str],
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    upgrade: bool = False,
) -> list[str]:
    """The pip command line that installs ``names``."""
    command = [sys.executable, "-m", "pip", "install"]
    for link in find_links:
        command += ["--find-links", link]
    if index_url:
        command += ["--index-url", index_url]
    if upgrade:
        command.append("--upgrade")
    return command + [distribution(name) for name in names]


def install(
    names: Sequence[str],
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    upgrade: bool = False,
) -> int:
    """Run pip for ``names``; a pip failure is an AtlasError with pip's exit status."""
    command = pip_command(names, find_links, index_url, upgrade)
    wanted = ", ".join(distribution(name) for name in names)
    print(f"atlas: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise AtlasError(f"pip could not install {wanted} (exit {result.returncode}); see above")
    print(f"installed {wanted}; `atlas plugins` lists what it registers")
    return 0
