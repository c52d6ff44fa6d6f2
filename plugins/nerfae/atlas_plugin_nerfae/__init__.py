"""NeRF auto-encoder for NeRF Atlas: the ``nerfae`` field and the ``latent_l2`` loss.

Each point is encoded to a latent material vector; density and colour are decoded
from it. Enabling the plugin (``--plugins nerfae``) makes ``nerfae`` the run's field
unless the user chose a field, and adds ``losses.latent_l2`` (weight ``LATENT_L2``,
``--set losses.latent_l2=W`` to change it) unless the latents are l2-normalised.
"""

from __future__ import annotations

from atlas_core.api import Register, RunConfig, hookimpl
from atlas_plugin_nerfae.field import NeRFAEField
from atlas_plugin_nerfae.loss import LatentL2Loss

__all__ = ["LATENT_L2", "LatentL2Loss", "NeRFAEField"]

LATENT_L2 = 1e-3  # default weight of the latent penalty


@hookimpl
def atlas_register_fields(register: Register) -> None:
    """The auto-encoder field."""
    register(
        "nerfae", NeRFAEField, description="encoder MLP to latent codes, density/colour decoders"
    )


@hookimpl
def atlas_register_losses(register: Register) -> None:
    """The latent penalty."""
    register("latent_l2", LatentL2Loss, description="mean squared nerfae latent")


@hookimpl
def atlas_configure(config: RunConfig) -> None:
    """Choose the ``nerfae`` field unless the user chose one; add the latent penalty.

    The core reports another plugin that also chooses the field.
    """
    if "field" in config.explicit and config.field.name != "nerfae":
        return
    config.field.name = "nerfae"
    if config.field.options.get("normalization", "none") != "l2":
        config.losses.setdefault("latent_l2", LATENT_L2)
