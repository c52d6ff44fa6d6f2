"""VolSDF on a multiresolution hash grid (NeuS2 / Neuralangelo style).

Wang et al. 2023, "NeuS2: Fast Learning of Neural Implicit Surfaces", and Li et al.
2023, "Neuralangelo: High-Fidelity Neural Surface Reconstruction": a multiresolution
hash encoding (Mueller et al. 2022, the ``ngp`` plugin's ``hash`` encoding, built by name
through ``BuildContext.create``) feeds a small SDF MLP. By default it starts from the
surface ``volsdf_grid``'s density warm-up finds (a dense DVGO density, converted and
carved), regressed into the network (``distill``); or from a sphere (SAL, through
:class:`SDFNetwork`), which reaches only the parts of a scene near that sphere. Normals
are numerical gradients, central differences whose step follows the finest active level
(Neuralangelo sec. 3.1-3.2), so the eikonal term needs first derivatives of the encoding
only; levels are switched on coarse to fine (Neuralangelo sec. 3.2). While the colour
network sees detached normals, those are one-sided differences computed without gradients
(3 evaluations) and the eikonal term covers a random fraction of the samples with central
differences (6 each), instead of 7 evaluations with gradients for every sample: the SDF
network, not the encoding, is most of a step's cost. The density is
VolSDF's Laplace CDF (Yariv et al. 2021, eq. 2-3) with the learned ``beta`` capped by a
falling ceiling, as ``volsdf_grid`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from atlas_core.api import ConfigError, Field, PositionalEncoding, RaySamples, Slot, mlp
from atlas_core.api import grid as grids
from atlas_plugin_volsdf.density import LaplaceDensity, laplace_cdf
from atlas_plugin_volsdf.distill import NEAR_FRACTION, fit_sdf, surface_points
from atlas_plugin_volsdf.grid_field import SDFGridField
from atlas_plugin_volsdf.sdf_network import SDFNetwork

if TYPE_CHECKING:
    from atlas_core.api import BuildContext

__all__ = ["HashSDFField", "hash_encoding"]

ENCODING = "hash"  # the encoding the ngp plugin registers
PROVIDER = "ngp"
# the marching step, as a fraction of the box's longest side: volsdf_grid's (0.3 of a
# 128-vertex grid's cell), fine enough for the Laplace density's width of a few beta_final
# (synth scene, 300 s: this step gave 399 steps and Chamfer 0.024; half a cell of the
# finest level, about 5x finer, 362 steps and 0.031)
STEP_OF_EXTENT = 0.3 / 127
BETA_INIT = {"density": 0.02, "sphere": 0.05}  # the default ceiling's start, per init
# steps from the SDF's start to beta_final: a hash step costs about 3 of volsdf_grid's,
# so volsdf_grid's 600 left the ceiling high to the end of a short run and the surface
# inside the truth (synth scene, 300 s: Chamfer 0.024 at 600, 0.0138 at 250, 0.0118 at
# 150, 0.0113 at 120 with two shapes merged); then the final ceiling (at 150 steps: 0.0118
# with 0.003, 0.0096 with 0.002, 0.0081 with 0.0015; volsdf_grid 0.0084)
ANNEAL_STEPS = 150
BETA_FINAL = 0.0015
EIKONAL_FRACTION = 0.25  # of the training samples, when the normals are detached
FIT_POINTS = 1 << 15  # points per distillation step
FIT_BAND = 8.0  # distances clamped at this many warm-up voxels (DeepSDF's clamp)
FIT_LR = {"encoding": 1e-2, "sdf_network": 1e-3}  # Instant-NGP's rate for the table


def hash_encoding(context: BuildContext, **options: object) -> nn.Module:
    """The ``hash`` encoding the ``ngp`` plugin registers, built by the core like any slot.

    Without ngp enabled the run stops with a ConfigError that says how to enable it.
    """
    if PROVIDER not in context.config.plugins:
        raise ConfigError(
            "field 'volsdf_hash' needs the 'hash' encoding of the ngp plugin, which is not "
            "enabled: run with --plugins volsdf,ngp --set field=volsdf_hash "
            "(pip install atlas-plugin-ngp if it is not installed)"
        )
    return context.create("encoding", Slot(ENCODING, dict(options)), in_dim=3)


class HashSDFField(Field):
    """Hash-encoded SDF MLP; outputs density, rgb, sdf, normals, sdf_gradients.

    Encoding options (the ngp ``hash`` encoding's): ``levels`` from ``base_resolution``
    to ``finest_resolution`` over the scene box, ``features`` per level, ``2**log2_table``
    rows. ``initial_levels`` levels (at most ``levels``) are active at the start, one more every
    ``level_steps`` steps (0: all from the start). The SDF MLP has ``width`` x ``depth``
    softplus layers and ``geometry_features`` outputs besides the SDF; it starts as the
    sphere of ``radius`` around the box's centre (0: half the box's smallest half-size).
    ``gradient_step``: the central-difference step in world units (0: one cell of the
    finest active level, Neuralangelo). ``detach_normals``: the colour loss does not
    reach the SDF through the colour MLP's normal input; then the normals are one-sided
    differences without gradients, except at a random ``eikonal_fraction`` of the
    training samples (``eikonal_mask``), where they are central differences with
    gradients and the eikonal term sees them (1: every sample, all central). ``beta`` as
    in ``volsdf_grid``: learned, capped by a ceiling from ``beta_init`` to ``beta_final`` over
    ``anneal_steps`` from the SDF's start (``beta_init`` 0: 0.02 after the warm-up, 0.05
    from a sphere). ``step_size``: the occupancy sampler's march step (0: ``volsdf_grid``'s,
    0.3 / 127 of the box's longest side).

    ``init="density"`` (default): for ``warmup_steps`` steps a ``volsdf_grid`` field (its
    defaults, ``warmup_resolution`` vertices along the box's longest side, half that for
    the first two thirds of the steps) trains a DVGO density and converts it to an SDF,
    carved where ``carve_views`` training views see through it (0: not carved);
    the hash SDF then regresses onto it for ``fit_steps`` Adam steps (``distill``) with
    the levels up to the warm-up grid's resolution on, and VolSDF training goes on from
    there. ``init="sphere"``: the sphere of ``radius`` from the start.
    """

    def __init__(
        self,
        context: BuildContext,
        levels: int = 16,
        features: int = 2,
        log2_table: int = 17,
        base_resolution: int = 16,
        finest_resolution: int = 1024,
        initial_levels: int = 6,
        level_steps: int = 50,
        width: int = 64,
        depth: int = 2,
        geometry_features: int = 15,
        radius: float = 0.0,
        gradient_step: float = 0.0,
        detach_normals: bool = True,
        eikonal_fraction: float = EIKONAL_FRACTION,
        color_width: int = 64,
        color_depth: int = 2,
        dir_frequencies: int = 4,
        init: Literal["density", "sphere"] = "density",
        warmup_steps: int = 150,
        warmup_resolution: int = 128,
        carve_views: int = 3,
        fit_steps: int = 300,
        beta_init: float = 0.0,
        beta_final: float = BETA_FINAL,
        anneal_steps: int = ANNEAL_STEPS,
        beta_min: float = 1e-3,
        step_size: float = 0.0,
    ):
        super().__init__()
        if initial_levels < 1 or level_steps < 0:
            raise ValueError("need initial_levels >= 1 and level_steps >= 0")
        if radius < 0 or gradient_step < 0 or step_size < 0:
            raise ValueError("radius, gradient_step and step_size must be >= 0")
        if not 0 < eikonal_fraction <= 1:
            raise ValueError(f"eikonal_fraction must be in (0, 1], got {eikonal_fraction}")
        if init not in BETA_INIT:
            raise ValueError(f"init must be 'density' or 'sphere', got {init!r}")
        if init == "density" and (warmup_steps < 1 or fit_steps < 0 or warmup_resolution < 4):
            raise ValueError(
                "init='density' needs warmup_steps >= 1, warmup_resolution >= 4, fit_steps >= 0"
            )
        beta_init = beta_init or BETA_INIT[init]
        if not beta_min < beta_final <= beta_init or anneal_steps < 0:
            raise ValueError("need beta_min < beta_final <= beta_init and anneal_steps >= 0")
        bounds = context.scene.bounds
        low = torch.tensor(bounds[:3], dtype=torch.float32)
        high = torch.tensor(bounds[3:], dtype=torch.float32)
        if float((high - low).min()) <= 0:
            raise ValueError(f"scene bounds {bounds} enclose no volume")
        self.register_buffer("centre", 0.5 * (low + high), persistent=False)
        self.extent = float((high - low).max())
        self.encoding = hash_encoding(
            context,
            levels=levels,
            features=features,
            log2_table=log2_table,
            base_resolution=base_resolution,
            finest_resolution=finest_resolution,
        )
        self.levels, self.level_features = levels, features
        self.resolutions = [
            base_resolution * (finest_resolution / base_resolution) ** (i / max(levels - 1, 1))
            for i in range(levels)
        ]
        initial_levels = min(initial_levels, levels)
        self.teacher: SDFGridField | None = None
        self.sdf_start, self.fit_steps = 0, fit_steps
        if init == "density":
            self.teacher = SDFGridField(
                context,
                resolution=warmup_resolution,
                initial_resolution=warmup_resolution // 2,
                upscale_steps=(max(1, 2 * warmup_steps // 3),),
                warmup_steps=warmup_steps,
                carve_views=carve_views,
            )
            self.sdf_start = warmup_steps
            warm = sum(1 for r in self.resolutions if r <= warmup_resolution * (1 + 1e-6))
            initial_levels = min(levels, max(initial_levels, warm))
        self.register_buffer("is_sdf", torch.tensor(init == "sphere"))
        self.initial_levels, self.level_steps = initial_levels, level_steps
        self.register_buffer("active", torch.tensor(levels if not level_steps else initial_levels))
        self.radius = radius or 0.25 * float((high - low).min())
        self.sdf_network = SDFNetwork(
            self.encoding.out_dim, width, depth, (), geometry_features, self.radius
        )
        self.fixed_step, self.detach_normals = gradient_step, detach_normals
        self.eikonal_fraction = eikonal_fraction
        self.march_step = step_size or STEP_OF_EXTENT * self.extent
        self.laplace = LaplaceDensity(beta_init, beta_min)
        self.beta_init, self.beta_final, self.anneal_steps = beta_init, beta_final, anneal_steps
        self.register_buffer("beta_ceiling", torch.tensor(float(beta_init)))
        self.dir_encoding = PositionalEncoding(3, dir_frequencies)
        colour_in = geometry_features + 3 + self.dir_encoding.out_dim
        self.color_mlp = mlp(colour_in, color_width, color_depth, 3)
        if init == "sphere":
            self.fit_initial_sphere()

    @torch.no_grad()
    def fit_initial_sphere(self, count: int = 8192) -> None:
        """Make the starting SDF the sphere's, refitting SAL's output row (SDFNetwork)."""
        generator = torch.Generator().manual_seed(0)
        directions = torch.randn(count, 3, generator=generator)
        directions = directions / directions.norm(dim=-1, keepdim=True)
        reach = 0.5 * self.extent * 3**0.5
        lengths = reach * torch.rand(count, 1, generator=generator) ** (1.0 / 3.0)
        points = self.centre + directions * lengths
        self.sdf_network.fit_sphere(self.inputs(points), self.radius, ridge=1e-6)

    @property
    def sample_step(self) -> float:
        """The occupancy sampler's march step (world units)."""
        return self.march_step

    @property
    def gradient_step(self) -> float:
        """Central-difference step: one cell of the finest active level, or the fixed one."""
        if self.fixed_step:
            return self.fixed_step
        return self.extent / self.resolutions[int(self.active) - 1]

    @property
    def beta(self) -> float:
        """The Laplace scale in use (the learned one, or the ceiling when lower)."""
        return float(self.scale().detach())

    def scale(self) -> Tensor:
        """The learned beta, at most the annealed ceiling."""
        return torch.minimum(self.laplace.beta, self.beta_ceiling)

    def ceiling_at(self, step: int) -> float:
        """The beta ceiling after ``step`` steps: geometric from beta_init to beta_final."""
        progress = min(max(step, 0) / self.anneal_steps, 1.0) if self.anneal_steps else 1.0
        return self.beta_init * (self.beta_final / self.beta_init) ** progress

    def active_at(self, step: int) -> int:
        """Levels switched on after ``step`` steps (Neuralangelo's coarse-to-fine), counted
        from the SDF's start."""
        if not self.level_steps:
            return self.levels
        since = max(step - self.sdf_start, 0)
        return min(self.levels, self.initial_levels + since // self.level_steps)

    def grow(self, step: int) -> bool:
        """Run the warm-up's schedule, then distil it once; then switch levels on and lower
        the beta ceiling. True when parameters were replaced (the core's cue for a fresh
        optimiser)."""
        if self.teacher is not None:
            changed = self.teacher.grow(step)  # upscaling, then the conversion to an SDF
            if not bool(self.teacher.is_sdf):
                return changed
            self.distill(self.teacher)
            self.teacher = None
            self.is_sdf.fill_(True)
            changed = True
        else:
            changed = False
        with torch.no_grad():
            self.active.fill_(self.active_at(step))
            self.beta_ceiling.fill_(self.ceiling_at(step - self.sdf_start))
        return changed

    def distill(self, teacher: SDFGridField) -> float:
        """Regress the hash SDF onto the warm-up's converted SDF grid; the final L1 loss."""
        self.active.fill_(self.initial_levels)
        shape, spacing = teacher.shape, float(teacher.spacing.max())
        vertices = grids.vertices(teacher.low, teacher.high, shape)
        values = teacher.sdf_values().detach()[:, 0]
        near = round(NEAR_FRACTION * FIT_POINTS)

        low, span = teacher.low, teacher.high - teacher.low

        def points(generator: torch.Generator) -> Tensor:
            close = surface_points(values, vertices, 2 * spacing, near, spacing, generator)
            anywhere = low + torch.rand(FIT_POINTS - near, 3, generator=generator).to(span) * span
            return torch.cat([close, anywhere])

        groups = [
            {"params": list(getattr(self, name).parameters()), "lr": lr}
            for name, lr in FIT_LR.items()
        ]
        with torch.enable_grad():
            return fit_sdf(
                self.network_sdf, teacher.sdf, groups, points, self.fit_steps, FIT_BAND * spacing
            )

    def inputs(self, positions: Tensor) -> Tensor:
        """``[x - centre, hash features]`` with the inactive levels' features zeroed."""
        encoded = self.encoding(positions)
        active = int(self.active)
        if active < self.levels:
            keep = torch.arange(self.levels, device=encoded.device) < active
            mask = keep.repeat_interleave(self.level_features).to(encoded.dtype)
            encoded = encoded * mask
        return torch.cat([positions - self.centre, encoded], dim=-1)

    def geometry(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """SDF [N, 1] and geometry features [N, geometry_features]."""
        return self.sdf_network(self.inputs(positions))

    def network_sdf(self, positions: Tensor) -> Tensor:
        """The hash network's signed distance [N, 1], also during the warm-up."""
        return self.geometry(positions)[0]

    def sdf(self, positions: Tensor) -> Tensor:
        """Signed distance [N, 1] at world positions [N, 3] (negative inside; during the
        warm-up, the warm-up field's stand-in)."""
        if self.teacher is not None:
            return self.teacher.sdf(positions)
        return self.network_sdf(positions)

    def sdf_gradient(self, positions: Tensor) -> Tensor:
        """Central-difference gradient [N, 3] of the SDF (Neuralangelo eq. 4)."""
        if self.teacher is not None:
            return self.teacher.sdf_gradient(positions)
        return self.numerical_gradient(positions)

    def numerical_gradient(self, positions: Tensor) -> Tensor:
        """``(sdf(x + h e_i) - sdf(x - h e_i)) / 2h`` for each axis, all in one batch."""
        h = self.gradient_step
        offsets = h * torch.cat([torch.eye(3), -torch.eye(3)]).to(positions)
        shifted = (positions[None] + offsets[:, None]).reshape(-1, 3)
        values = self.sdf(shifted).view(6, -1)
        return ((values[:3] - values[3:]) / (2 * h)).t()

    def laplace_density(self, sdf: Tensor) -> Tensor:
        """VolSDF eq. 2 with the scale in use."""
        beta = self.scale()
        return laplace_cdf(-sdf, beta) / beta

    def density(self, positions: Tensor, times: Tensor | None = None) -> Tensor:
        """Density [N, 1] at world positions (static scene: ``times`` unused)."""
        if self.teacher is not None:
            return self.teacher.density(positions)
        return self.laplace_density(self.sdf(positions))

    def one_sided_gradient(self, positions: Tensor, sdf: Tensor) -> Tensor:
        """``(sdf(x + h e_i) - sdf(x)) / h`` for each axis, given ``sdf(x)`` [N, 1]."""
        h = self.gradient_step
        shifted = (positions[None] + h * torch.eye(3).to(positions)[:, None]).reshape(-1, 3)
        values = self.sdf(shifted).view(3, -1)
        return ((values - sdf[:, 0]) / h).t()

    def eikonal_rows(self, count: int, device: torch.device) -> Tensor:
        """A random ``eikonal_fraction`` of ``count`` sample rows (at least one)."""
        keep = torch.rand(count, device=device) < self.eikonal_fraction
        if count and not bool(keep.any()):
            keep[torch.randint(count, (1,), device=device)] = True
        return keep.nonzero()[:, 0]

    def forward(self, samples: RaySamples) -> dict[str, Tensor]:
        """Density, colour, SDF, unit normals and the numerical SDF gradients per sample
        (and, when only some samples carry the eikonal term, the ``eikonal_mask`` of those,
        1 or 0)."""
        if self.teacher is not None:
            return self.teacher(samples)
        positions = samples.positions
        sdf, features = self.geometry(positions)
        out: dict[str, Tensor] = {}
        if self.detach_normals and self.eikonal_fraction < 1:
            with torch.no_grad():
                gradients = self.one_sided_gradient(positions, sdf.detach())
            if self.training and torch.is_grad_enabled():
                rows = self.eikonal_rows(len(positions), positions.device)
                central = self.numerical_gradient(positions[rows])
                gradients = gradients.index_put((rows,), central)
                mask = positions.new_zeros(len(positions), 1)
                out["eikonal_mask"] = mask.index_fill_(0, rows, 1.0)
        else:
            gradients = self.numerical_gradient(positions)
        normals = gradients / gradients.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        shading = normals.detach() if self.detach_normals else normals
        colour_in = torch.cat([features, shading, self.dir_encoding(samples.directions)], -1)
        out.update(
            density=self.laplace_density(sdf),
            rgb=torch.sigmoid(self.color_mlp(colour_in)),
            sdf=sdf,
            normals=normals,
            sdf_gradients=gradients,
        )
        return out

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """A checkpoint saved after the warm-up has no warm-up field: drop ours first."""
        saved_stage = state_dict.get(prefix + "is_sdf")
        if saved_stage is not None and bool(saved_stage) and self.teacher is not None:
            self.teacher = None
        super()._load_from_state_dict(state_dict, prefix, *args)
