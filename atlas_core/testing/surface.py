"""The import rule for plugins: only ``atlas_core``, ``atlas_core.api`` and
``atlas_core.testing``, and only names in their ``__all__``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

__all__ = ["PUBLIC_MODULES", "core_imports", "import_violations"]

PUBLIC_MODULES = ("atlas_core", "atlas_core.api", "atlas_core.testing")
"""The modules a plugin (its package and its tests) may import from the core."""

SKIPPED = {"build", ".venv"}  # build outputs and environments hold copies, not sources


def core_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import of the core in a file (name None: ``import m``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "atlas_core":
                found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "atlas_core":
                    found.append((node.lineno, alias.name, None))
    return found


def import_violations(root: Path) -> list[str]:
    """Imports under ``root`` of anything beyond the public surface, one line each."""
    public = {name: importlib.import_module(name) for name in PUBLIC_MODULES}
    problems = []
    for path in sorted(Path(root).rglob("*.py")):
        if SKIPPED & set(path.relative_to(root).parts):
            continue
        for line, module, name in core_imports(path):
            where = f"{path.relative_to(root)}:{line}"
            if module not in public:
                problems.append(f"{where}: imports {module}")
            elif name is None:
                if module != "atlas_core":
                    problems.append(f"{where}: import {module} (use from ... import NAME)")
            elif name == "*" or name not in public[module].__all__:
                problems.append(f"{where}: {name} is not in {module}.__all__")
    return problems
