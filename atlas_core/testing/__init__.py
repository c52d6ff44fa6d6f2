"""Test helpers for plugin authors: contract tests, fixtures and ways to drive a run.

Plugins' tests import from here (and from ``atlas_core.api``), nothing deeper::

    from atlas_core.testing import FieldContract, Trainer, run_cli

The fixtures ``atlas_pm`` and ``atlas_scene`` load by themselves once nerf-atlas is
installed (a pytest plugin).
"""

from atlas_core.build import configure
from atlas_core.cli import main as run_cli
from atlas_core.commands.export import export_mesh
from atlas_core.config import load_toml
from atlas_core.engine.trainer import Trainer, load_trained
from atlas_core.nerf import native  # the C++ kernel loader: its cache, the grid kernels
from atlas_core.nerf.pipeline import build as build_pipeline
from atlas_core.plugins import load as load_plugins
from atlas_core.testing.contract_base import ComponentContract, assert_finite, contract_scene
from atlas_core.testing.contracts import (
    DatasetContract,
    EncodingContract,
    FieldContract,
    LossContract,
    RendererContract,
    SamplerContract,
    WrapperContract,
)
from atlas_core.testing.fixtures import (
    QUICK_SETTINGS,
    break_kernel_builds,
    configured,
    quick_trainer,
    requires_plugins,
)
from atlas_core.testing.scenes import forward_facing_scene
from atlas_core.testing.surface import import_violations

__all__ = [
    "QUICK_SETTINGS",
    "ComponentContract",
    "DatasetContract",
    "EncodingContract",
    "FieldContract",
    "LossContract",
    "RendererContract",
    "SamplerContract",
    "Trainer",
    "WrapperContract",
    "assert_finite",
    "break_kernel_builds",
    "build_pipeline",
    "configure",
    "configured",
    "contract_scene",
    "export_mesh",
    "forward_facing_scene",
    "import_violations",
    "load_plugins",
    "load_toml",
    "load_trained",
    "native",
    "quick_trainer",
    "requires_plugins",
    "run_cli",
]
