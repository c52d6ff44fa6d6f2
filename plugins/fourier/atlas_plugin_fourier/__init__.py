"""Gaussian Fourier features for NeRF Atlas: the ``fourier`` encoding.

Tancik et al. 2020. Enabling the plugin (``--plugins fourier``) makes ``fourier`` the
run's position encoding unless the user chose one; with ``encoding.anneal_steps`` the
frequencies open coarse to fine as training proceeds.
"""

from __future__ import annotations

from torch import nn

from atlas_core.api import Register, Run, RunConfig, hookimpl, require_encoding
from atlas_plugin_fourier.encoding import FourierEncoding

__all__ = ["FourierEncoding"]


@hookimpl
def atlas_register_encodings(register: Register) -> None:
    """The Gaussian Fourier feature encoding."""
    register("fourier", FourierEncoding, description="Gaussian random Fourier features")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Choose ``fourier`` unless the user chose an encoding."""
    if "encoding" not in config.explicit:
        config.encoding.name = "fourier"  # claimed even if filled: the core reports two claims


@hookimpl
def atlas_train_step_end(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Move every Fourier encoding's annealing window to the finished step."""
    for module in run.pipeline.modules():
        if isinstance(module, FourierEncoding):
            module.set_step(step)


@hookimpl
def atlas_wrap_field(field: nn.Module, config: RunConfig) -> None:
    """Stop at start-up when the field ignores the ``fourier`` encoding (e.g. a hash grid)."""
    require_encoding(field, config, "fourier", "fourier", FourierEncoding)
