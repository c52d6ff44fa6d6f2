"""Multi-plane images for NeRF Atlas: the ``mpi`` field and the ``mpi`` plane sampler.

Zhou et al. 2018, "Stereo Magnification: Learning View Synthesis using Multiplane
Images"; Mildenhall et al. 2019, "Local Light Field Fusion". ``--plugins mpi`` makes
``mpi`` the run's field unless the user chose a field, and then the ``mpi`` sampler
(intervals between the planes) unless the user chose a sampler.
"""

from __future__ import annotations

from atlas_core.api import Register, RunConfig, hookimpl
from atlas_plugin_mpi.field import MPIField
from atlas_plugin_mpi.sampler import PlaneSampler
from atlas_plugin_mpi.samples import PlaneSamples

__all__ = ["MPIField", "PlaneSampler", "PlaneSamples"]
__version__ = "1.0.0"

NAME = "mpi"


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The multi-plane image field."""
    register(NAME, MPIField, description="RGBA planes in a reference camera (Zhou et al. 2018)")


@hookimpl
def atlas_register_samplers(register: Register) -> None:
    """The plane sampler."""
    register(NAME, PlaneSampler, description="one interval per plane crossed, plane to plane")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Claim the field unless the user chose one; with the mpi field, claim the sampler
    unless the user chose one or set options of another (e.g. ``sampler.samples``)."""
    if "field" not in config.explicit:
        config.field.name = NAME
    if (
        config.field.name == NAME
        and "sampler" not in config.explicit
        and not config.sampler.options
    ):
        config.sampler.name = NAME
    if config.field.name == NAME:  # planes in a world reference camera: world rays, no NDC
        for key in ("ndc", "contract"):
            if getattr(config.data, key) == "auto":
                setattr(config.data, key, False)
