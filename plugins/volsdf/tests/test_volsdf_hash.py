"""The volsdf_hash field: the ngp hash encoding through the registry, the density warm-up
and its distillation, sphere start, numerical gradients, coarse-to-fine levels, the beta
ceiling, and a short fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from atlas_plugin_volsdf import HashSDFField
from atlas_plugin_volsdf.losses import EikonalLoss

from atlas_core.api import (
    BuildContext,
    ConfigError,
    RayBundle,
    RaySamples,
    RunConfig,
    SceneData,
    samples_from_bins,
)
from atlas_core.api import grid as grids
from atlas_core.testing import configure, load_toml, run_cli

BOUNDS = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
SMALL = {"levels": 4, "log2_table": 12, "base_resolution": 4, "finest_resolution": 32,
         "width": 32, "geometry_features": 7, "color_width": 16, "init": "sphere"}  # fmt: skip


def context(atlas_pm, plugins: tuple[str, ...] = ("volsdf", "ngp")) -> BuildContext:  # noqa: ANN001
    """A build context of a run with ``plugins`` enabled over the box ``BOUNDS``."""
    return BuildContext(
        RunConfig(plugins=list(plugins)), atlas_pm(enable=plugins), SceneData({}, bounds=BOUNDS)
    )


def make(atlas_pm, **options: object) -> HashSDFField:  # noqa: ANN001
    """A small hash SDF field over [-1, 1]^3 (seeded: SAL's start is random)."""
    torch.manual_seed(0)
    return HashSDFField(context(atlas_pm), **{**SMALL, **options})


def points(count: int, scale: float = 0.9, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(count, 3, generator=generator) - 1)


def test_without_the_ngp_plugin_the_field_says_how_to_enable_it(atlas_pm) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match=r"--plugins volsdf,ngp"):
        HashSDFField(context(atlas_pm, ("volsdf",)), **SMALL)


def test_starts_as_the_sphere_with_unit_numerical_gradients(atlas_pm) -> None:  # noqa: ANN001
    field = make(atlas_pm, radius=0.5, width=64)
    x = points(400)
    x = x[x.norm(dim=-1) > 0.2]
    with torch.no_grad():
        error = (field.sdf(x) - (x.norm(dim=-1, keepdim=True) - 0.5)).abs()
        norms = field.sdf_gradient(x).norm(dim=-1)
    assert float(error.mean()) < 0.03 and float(error.max()) < 0.15
    assert abs(float(norms.mean()) - 1.0) < 0.05
    assert make(atlas_pm).radius == pytest.approx(0.5)  # 0: a quarter of the box's side


def test_numerical_gradient_matches_autograd_and_follows_the_step(atlas_pm) -> None:  # noqa: ANN001
    field = make(atlas_pm, radius=0.5, gradient_step=1e-3)
    with torch.no_grad():  # give the hash features some weight
        field.encoding.table.uniform_(-0.05, 0.05)
        field.sdf_network.layers[0].weight[:, 3:].normal_(0.0, 0.5)
    x = points(64, 0.8).requires_grad_(True)
    (exact,) = torch.autograd.grad(field.sdf(x).sum(), x)
    assert field.gradient_step == 1e-3
    error = (field.sdf_gradient(x.detach()) - exact).norm(dim=-1)  # kinks at cell faces
    assert float(error.detach().median()) < 0.01
    coarse = make(atlas_pm, initial_levels=2, level_steps=10)  # step: one cell of level 2
    assert coarse.gradient_step == pytest.approx(2.0 / coarse.resolutions[1])


def test_levels_switch_on_coarse_to_fine(atlas_pm) -> None:  # noqa: ANN001
    field = make(atlas_pm, initial_levels=1, level_steps=5)
    with torch.no_grad():
        field.sdf_network.layers[0].weight[:, 3:].fill_(1.0)
        field.encoding.table.uniform_(-1.0, 1.0)
    x = points(32)
    first = field.inputs(x)[:, 3:]
    assert first[:, 2:].abs().max() == 0 and first[:, :2].abs().max() > 0  # one level of 2
    assert not field.grow(12) and int(field.active) == 3 and field.active_at(100) == 4
    assert field.inputs(x)[:, 3 + 4 : 3 + 6].abs().max() > 0
    assert int(make(atlas_pm, level_steps=0).active) == 4  # 0: all levels at once
    assert int(make(atlas_pm, initial_levels=9).active) == 4  # at most all of them


def test_beta_ceiling_falls_and_density_sharpens(atlas_pm) -> None:  # noqa: ANN001
    field = make(atlas_pm, beta_init=0.05, beta_final=0.005, anneal_steps=10)
    assert field.beta == pytest.approx(0.05)
    field.grow(10)
    assert field.beta == pytest.approx(0.005)
    with torch.no_grad():
        assert float(field.density(torch.zeros(1, 3))) == pytest.approx(1 / 0.005, rel=1e-3)


def warmed(atlas_pm, radius: float = 0.5, **options: object) -> HashSDFField:  # noqa: ANN001
    """A field in its density warm-up whose warm-up grid holds a solid ball of ``radius``."""
    field = make(atlas_pm, init="density", warmup_steps=10, warmup_resolution=32, **options)
    teacher = field.teacher
    teacher.carve_views = 0  # no training views to carve with
    inside = grids.vertices(teacher.low, teacher.high, teacher.shape).norm(dim=-1) < radius
    with torch.no_grad():
        teacher.sdf_grid.copy_(torch.where(inside, 10.0, -10.0)[:, None])
    return field


def test_the_warm_up_is_the_density_grid_then_the_hash_sdf_fits_its_surface(atlas_pm) -> None:  # noqa: ANN001
    field = warmed(atlas_pm, fit_steps=150)
    teacher = field.teacher
    x = points(500)
    with torch.no_grad():
        assert torch.equal(field.density(x), teacher.density(x))
        assert torch.equal(field.sdf(x), teacher.sdf(x))
    assert not field.grow(5) and field.teacher is teacher and not bool(field.is_sdf)
    assert field.grow(10)  # upscaled, converted and distilled: new parameters, a fresh optimiser
    assert field.teacher is None and bool(field.is_sdf)
    assert "teacher.sdf_grid" not in field.state_dict()
    assert int(field.active) == 4  # all levels up to the warm-up grid's resolution
    near = x[(x.norm(dim=-1) - 0.5).abs() < 0.15]
    with torch.no_grad():
        error = (field.sdf(near) - (near.norm(dim=-1, keepdim=True) - 0.5)).abs()
        centre, corner = field.sdf(torch.zeros(1, 3)), field.sdf(torch.full((1, 3), 0.8))
    assert float(error.mean()) < 0.05  # the ball, to a fraction of a warm-up voxel
    assert float(centre) < 0 < float(corner)
    assert field.beta == pytest.approx(0.02)  # the ceiling starts at the SDF's start


def test_the_distillation_is_what_fits_the_surface(atlas_pm) -> None:  # noqa: ANN001
    fitted, skipped = warmed(atlas_pm, fit_steps=150), warmed(atlas_pm, fit_steps=0)
    fitted.grow(10), skipped.grow(10)
    x = points(300)
    truth = x.norm(dim=-1, keepdim=True) - 0.5
    with torch.no_grad():
        fitted_error = float((fitted.sdf(x) - truth).abs().mean())
        skipped_error = float((skipped.sdf(x) - truth).abs().mean())
    assert fitted_error < 0.5 * skipped_error


def test_a_checkpoint_after_the_warm_up_loads_into_a_fresh_field(atlas_pm) -> None:  # noqa: ANN001
    field = warmed(atlas_pm, fit_steps=20)
    field.grow(10)
    fresh = make(atlas_pm, init="density", warmup_steps=10, warmup_resolution=32)
    fresh.load_state_dict(field.state_dict())
    assert fresh.teacher is None and bool(fresh.is_sdf)
    x = points(50)
    with torch.no_grad():
        assert torch.equal(fresh.sdf(x), field.sdf(x))
    during = make(atlas_pm, init="density", warmup_steps=10, warmup_resolution=32)
    during.load_state_dict(warmed(atlas_pm).state_dict())  # mid warm-up: the grid comes too
    assert during.teacher is not None and float(during.teacher.sdf_grid.detach().max()) == 10.0


def test_options_are_checked(atlas_pm) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="initial_levels"):
        make(atlas_pm, initial_levels=0)
    with pytest.raises(ValueError, match="init"):
        make(atlas_pm, init="cube")
    with pytest.raises(ValueError, match="warmup_steps"):
        make(atlas_pm, init="density", warmup_steps=0)
    warm = {"init": "density", "warmup_resolution": 16}
    assert make(atlas_pm, **warm, carve_views=0).teacher.carve_views == 0  # the warm-up's
    assert make(atlas_pm, **warm).teacher.carve_views == 3
    assert make(atlas_pm, **warm).teacher.resolutions == [8, 16]  # half, then the full grid
    with pytest.raises(ValueError, match="beta"):
        make(atlas_pm, beta_final=0.1)
    field = make(atlas_pm, step_size=0.01)
    assert field.sample_step == 0.01 and make(atlas_pm).sample_step == pytest.approx(2 * 0.3 / 127)


def test_configure_chooses_occupancy_and_eikonal(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    config.set("field", "volsdf_hash")
    configure(config, atlas_pm(enable=("volsdf", "ngp")))
    assert config.sampler.name == "occupancy" and config.losses["eikonal"] == 0.1
    assert config.renderer.options["background"] == "random"
    assert config.sampler.options["decay"] == 0.5  # the grid forgets the early, wide band
    assert config.sampler.options["rounds"] is True  # the culling stops at the surface
    chosen = RunConfig()
    chosen.set("field", "volsdf_hash")
    chosen.set("sampler.decay", 0.9)
    configure(chosen, atlas_pm(enable=("volsdf", "ngp")))
    assert chosen.sampler.options["decay"] == 0.9  # the user's wins
    grid = RunConfig()
    grid.set("field", "volsdf_grid")
    configure(grid, atlas_pm(enable=("volsdf",)))
    assert "decay" not in grid.sampler.options  # Instant-NGP's 0.95 for the dense grid


@pytest.mark.slow
def test_fits_the_generated_dtu_scan(tmp_path: Path) -> None:
    """A short fit on the generated scan (a short warm-up, distilled): the SDF's sign is
    right (the centre sphere and a box inside, a point above the sphere and a corner
    outside) and its gradients have unit length."""
    scan = tmp_path / "scan"
    assert run_cli(["data", "synth", str(scan), "--kind", "dtu", "--size", "32"]) == 0
    out = tmp_path / "run"
    options = [f"field.{k}={v}" for k, v in SMALL.items()] + [
        "field.level_steps=10", "field.initial_levels=2", "field.anneal_steps=60",
        "field.init=density", "field.warmup_steps=40", "field.fit_steps=100",
        "train.target_samples=4096", "losses.mask=0.1", "eval.video_frames=0", "train.lr=0.01",
    ]  # fmt: skip
    args = ["run", "--data", str(scan), "--data-kind", "dtu", "--plugins", "dtu,volsdf,ngp",
            "--set", "field=volsdf_hash", "--max-steps", "120", "--eval-views", "1", "--out",
            str(out)]  # fmt: skip
    assert run_cli([*args, *(a for o in options for a in ("--set", o))]) == 0
    assert load_toml(out / "config.toml").field.name == "volsdf_hash"
    from atlas_core.testing import load_trained

    field = load_trained(out, "cpu").pipeline.field
    inside = torch.tensor([[0.0, 0.0, 0.0], [0.52, -0.37, -0.22]])  # centre sphere, box
    outside = torch.tensor([[0.0, 0.0, 0.46], [-0.8, -0.8, 0.8]])  # above it, a corner
    with torch.no_grad():
        assert (field.sdf(inside) < 0).all() and (field.sdf(outside) > 0).all()
    norms = field.sdf_gradient(points(256, 0.7)).norm(dim=-1)
    assert abs(float(norms.detach().mean()) - 1.0) < 0.15


@pytest.mark.parametrize("field", ["volsdf_hash", "volsdf_grid"])
def test_relight_renders_the_fast_sdf_fields(atlas_pm, field: str) -> None:  # noqa: ANN001
    """With relight enabled the fast fields keep occupancy sampling and relight shades
    their samples (no clash); the SDF network is traced to its surface instead."""
    config = RunConfig()
    config.set("field", field)
    config.plugins = ["volsdf", "relight", "ngp"]
    configure(config, atlas_pm(enable=("volsdf", "relight", "ngp")))
    assert (config.sampler.name, config.renderer.name) == ("occupancy", "relight_volume")
    assert config.renderer.options["background"] == "random" and "eikonal" in config.losses
    assert config.losses["relight_mask"] == 0.1  # NeuS's opacity mask, not IDR's (1)
    network = RunConfig()
    network.set("field", "volsdf")
    network.plugins = ["volsdf", "relight"]
    configure(network, atlas_pm(enable=("volsdf", "relight")))
    assert (network.sampler.name, network.renderer.name) == ("surface", "relight")
    assert network.losses["relight_mask"] == 1.0
    default = RunConfig()
    default.plugins = ["volsdf", "relight"]
    configure(default, atlas_pm(enable=("volsdf", "relight")))
    assert (default.field.name, default.renderer.name) == ("volsdf", "relight")


def ray_samples(rays: int = 32, per_ray: int = 16) -> RaySamples:
    """Packed samples along rays through the box's centre, all inside [-1, 1]^3."""
    generator = torch.Generator().manual_seed(3)
    directions = torch.randn(rays, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    ones = torch.ones(rays, 1)
    bundle = RayBundle(
        -directions, directions, 0.1 * ones, 1.9 * ones, 1e-3 * ones, torch.zeros(rays)
    )
    edges = torch.linspace(0.1, 1.9, per_ray + 1).expand(rays, per_ray + 1)
    return samples_from_bins(bundle, edges)


def test_the_eikonal_term_covers_a_fraction_of_the_samples(atlas_pm) -> None:  # noqa: ANN001
    field = make(atlas_pm, radius=0.5, gradient_step=1e-3).train()
    samples = ray_samples()
    out = field(samples)
    count = len(samples.positions)
    chosen = out["eikonal_mask"].view(-1) > 0
    assert out["eikonal_mask"].shape == (count, 1) and out["sdf_gradients"].requires_grad
    assert 0.1 * count < int(chosen.sum()) < 0.4 * count  # a quarter, drawn at random
    # central differences at the chosen samples, one-sided ones (no gradients) elsewhere
    central = field.numerical_gradient(samples.positions).detach()
    gradients = out["sdf_gradients"]
    assert torch.allclose(gradients[chosen], central[chosen], atol=1e-5)
    assert not torch.allclose(gradients[~chosen], central[~chosen], atol=1e-5)
    assert float((gradients.detach() - central).norm(dim=-1).median()) < 0.02  # to the step's order
    assert torch.allclose(out["normals"].norm(dim=-1), torch.ones(count), atol=1e-4)
    # the loss is the mean over the chosen samples, whose gradients reach the SDF network
    loss = EikonalLoss()(samples.rays, {}, out)
    norms = gradients[chosen].norm(dim=-1)
    assert float(loss.detach()) == pytest.approx(
        float((norms - 1).square().mean().detach()), rel=1e-5
    )
    (grad,) = torch.autograd.grad(loss, gradients)
    assert grad[chosen].abs().sum() > 0 and grad[~chosen].abs().sum() == 0
    with torch.no_grad():
        assert "eikonal_mask" not in field(samples)  # not without gradients
    assert "eikonal_mask" not in field.eval()(samples)  # nor in evaluation
    whole = make(atlas_pm, radius=0.5, eikonal_fraction=1.0).train()(samples)
    assert "eikonal_mask" not in whole and whole["sdf_gradients"].requires_grad
    attached = make(atlas_pm, radius=0.5, detach_normals=False).train()(samples)
    assert "eikonal_mask" not in attached and attached["sdf_gradients"].requires_grad
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="eikonal_fraction"):
            make(atlas_pm, eikonal_fraction=bad)
