"""The occupancy-grid sampler: marching, early termination, grid updates, start-up checks."""

from __future__ import annotations

import pytest
import torch

from atlas_core.build import BuildContext
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.errors import ConfigError
from atlas_core.nerf.compositing import render_weights, segment_exclusive_cumsum
from atlas_core.nerf.fields import Field
from atlas_core.nerf.occupancy import FIRST_ROUND, OccupancySampler
from atlas_core.nerf.pipeline import Pipeline
from atlas_core.nerf.rays import RayBundle, clip_to_box

BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


class Ball(Field):
    """Density 50 inside a ball of radius 0.5 at the origin, 0 outside."""

    def forward(self, samples):  # noqa: ANN001, ANN201
        d = self.density(samples.positions)
        return {"density": d, "rgb": torch.ones(len(d), 3) * 0.5}

    def density(self, positions, times=None):  # noqa: ANN001, ANN201
        return (positions.norm(dim=-1, keepdim=True) < 0.5).float() * 50.0


class NoDensity(Field):
    def forward(self, samples):  # noqa: ANN001, ANN201
        return {"density": torch.zeros(len(samples.t_starts), 1)}


def make_sampler(field: Field, **options: object) -> OccupancySampler:
    config = RunConfig()
    context = BuildContext(config, None, SceneData({}, bounds=BOX), field=field)
    return OccupancySampler(context, **options)


def rays(n: int, seed: int = 0) -> RayBundle:
    gen = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1) * 3
    dirs = torch.nn.functional.normalize(-origins + 0.3 * torch.randn(n, 3, generator=gen), dim=-1)
    ones = torch.ones(n, 1)
    near, far = clip_to_box(origins, dirs, ones * 0.5, ones * 6, BOX)
    return RayBundle(origins, dirs, near, far, ones * 1e-3, torch.zeros(n).long())


def brute_force(sampler: OccupancySampler, r: RayBundle) -> dict[int, list[float]]:
    """Every fine step from where each ray enters the occupied cells' box."""
    found: dict[int, list[float]] = {}
    dt, grid = sampler.step_size, sampler.grid
    box = (*grid.occupied_low.tolist(), *grid.occupied_high.tolist())
    near_all, far_all = clip_to_box(r.origins, r.directions, r.near, r.far, box)
    for i in range(len(r)):
        near, far = float(near_all[i]), float(far_all[i])
        t = near + dt * torch.arange(int((far - near) / dt) + 2).double()
        t = t[t + 0.5 * dt <= far]
        mid = (r.origins[i] + r.directions[i] * (t.float() + 0.5 * dt)[:, None]).float()
        kept = t[sampler.grid.occupied(mid)].tolist()
        if kept:
            found[i] = kept
    return found


def test_marching_matches_brute_force_and_skips_empty_space() -> None:
    sampler = make_sampler(Ball(), resolution=32, early_stop=0.0).eval()
    sampler.grid.update(Ball().density, sampler.step_size, 0.0, 0.01, all_cells=True)
    assert 0.02 < sampler.grid.mask.float().mean() < 0.15  # the ball's share of the box
    r = rays(24)
    ray, t = sampler.march(r)
    assert torch.all(ray[1:] >= ray[:-1])  # packed and ordered by ray
    expected = brute_force(sampler, r)
    assert sorted(set(ray.tolist())) == sorted(expected)
    for i, values in expected.items():
        assert torch.allclose(t[ray == i], torch.tensor(values, dtype=t.dtype), atol=1e-4)
    positions = r.origins[ray] + r.directions[ray] * (t + 0.5 * sampler.step_size)[:, None]
    assert sampler.grid.occupied(positions).all()


def test_early_termination_drops_samples_behind_surfaces() -> None:
    ball = Ball()
    sampler = make_sampler(ball, resolution=32).eval()
    sampler.grid.update(ball.density, sampler.step_size, 0.0, 0.01, all_cells=True)
    r = rays(32)
    sampler_all = make_sampler(ball, resolution=32, early_stop=0.0).eval()
    sampler_all.grid.load_state_dict(sampler.grid.state_dict())
    everything, _ = sampler_all(r, ball)
    stopped, _ = sampler(r, ball)
    assert 0 < stopped.t_starts.numel() < everything.t_starts.numel() / 2
    # what is kept renders the same opacity per ray
    opacity = []
    for samples in (everything, stopped):
        density = ball.density(samples.positions)
        w = render_weights(density, samples.deltas, samples.ray_indices, 32)
        opacity.append(torch.zeros(32).index_add(0, samples.ray_indices, w))
    assert torch.allclose(opacity[0], opacity[1], atol=1e-3)


def test_grid_updates_during_training_and_round_trips() -> None:
    ball = Ball()
    sampler = make_sampler(ball, resolution=16, update_every=2, warmup_steps=4)
    assert sampler.grid.mask.all()  # before the first update every cell is marched
    for _ in range(3):
        sampler(rays(8), ball)
    assert int(sampler.steps) == 3
    inside = sampler.grid.occupied(torch.zeros(1, 3))
    corner = sampler.grid.occupied(torch.tensor([[0.9, 0.9, 0.9]]))
    assert inside.item() and not corner.item()
    assert float(sampler.grid.occupied_high.max()) < 1.0  # box shrank to the ball
    copy = make_sampler(ball, resolution=16)
    copy.load_state_dict(sampler.state_dict())
    assert torch.equal(copy.grid.mask, sampler.grid.mask)
    assert torch.equal(copy.grid.coarse_mask, sampler.grid.coarse_mask)
    assert torch.equal(copy.grid.occupied_low, sampler.grid.occupied_low)


def test_field_without_density_fails_at_start_up(atlas_pm) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="has no density"):
        make_sampler(NoDensity())

    class NoDensityPlugin:
        name = "nodensity"

        from atlas_core import hookimpl

        @hookimpl
        def atlas_register_fields(self, register) -> None:  # noqa: ANN001
            register("flat", lambda: NoDensity())

    config = RunConfig()
    config.set("field", "flat")
    config.set("sampler", "occupancy")
    with pytest.raises(ConfigError, match="sampler 'occupancy'.*'flat'.*no density"):
        Pipeline(BuildContext(config, atlas_pm(NoDensityPlugin()), SceneData({})))


@pytest.mark.slow
def test_training_with_occupancy_learns(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.engine.trainer import Trainer
    from atlas_core.plugins import load

    config = RunConfig()
    config.data.path = str(atlas_scene)
    pairs = {"sampler": "occupancy", "sampler.resolution": 32, "data.bound": 1.2,
             "train.max_steps": 200, "train.batch_rays": 1024, "eval.views": 0,
             "train.target_samples": 32768}  # fmt: skip
    for key, value in pairs.items():
        config.set(key, value)
    trainer = Trainer(config, load(), tmp_path / "run")
    before = trainer.evaluate(write_images=False)["psnr"]
    trainer.fit()
    after = trainer.evaluate(write_images=False)["psnr"]
    print(f"occupancy on generated scene: {before:.2f} -> {after:.2f} dB")
    assert after - before >= 8.0, (before, after)
    grid = trainer.pipeline.sampler.grid
    assert 0.005 < grid.mask.float().mean() < 0.5  # empty space was found


def test_uniform_density_never_empties_the_grid() -> None:
    class Fog(Field):
        def density(self, positions, times=None):  # noqa: ANN001, ANN201
            return torch.full((len(positions), 1), 1e-3)

    sampler = make_sampler(Fog(), resolution=8)
    sampler.grid.update(Fog().density, sampler.step_size, 0.0, 0.01, all_cells=True)
    assert sampler.grid.mask.all()


class Slab(Field):
    """Thin fog (0.05) in front of a dense slab (20) at 0.2 <= z <= 0.5, medium (5) behind."""

    def forward(self, samples):  # noqa: ANN001, ANN201
        d = self.density(samples.positions)
        return {"density": d, "rgb": torch.ones(len(d), 3) * 0.5}

    def density(self, positions, times=None):  # noqa: ANN001, ANN201
        z = positions[:, 2:]
        return torch.where(z < 0.2, 0.05, torch.where(z <= 0.5, 20.0, 5.0))


def slab_rays(n: int) -> RayBundle:
    """Rays along +z through the slab, from z = -3."""
    gen = torch.Generator().manual_seed(4)
    xy = torch.rand(n, 2, generator=gen) * 1.2 - 0.6
    origins = torch.cat([xy, torch.full((n, 1), -3.0)], dim=1)
    dirs = torch.tensor([[0.0, 0.0, 1.0]]).expand(n, 3)
    ones = torch.ones(n, 1)
    near, far = clip_to_box(origins, dirs, ones * 0.5, ones * 6, BOX)
    return RayBundle(origins, dirs, near, far, ones * 1e-3, torch.zeros(n).long())


def test_weight_threshold_drops_low_weight_samples() -> None:
    slab, r, threshold = Slab(), slab_rays(16), 0.01
    options = {"resolution": 16, "early_stop": 0.0}  # the unupdated grid marches every cell
    everything, _ = make_sampler(slab, weight_threshold=0.0, **options).eval()(r, slab)
    culled, _ = make_sampler(slab, weight_threshold=threshold, **options).eval()(r, slab)
    # threshold 0 keeps every sample: in front of, inside and behind the slab
    z = everything.positions[:, 2]
    assert (z < 0.2).any() and (z > 0.5).any()
    # the kept samples are exactly those whose weight T * alpha exceeds the threshold
    density = slab.density(everything.positions)
    w = render_weights(density, everything.deltas, everything.ray_indices, len(r))
    expected = w.view(-1) > threshold
    assert 0 < int(expected.sum()) < len(w) / 4
    assert torch.equal(culled.ray_indices, everything.ray_indices[expected])
    assert torch.allclose(culled.t_starts, everything.t_starts[expected])
    # fog in front (weight ~ 0.004) and the medium behind the slab (T ~ 0.003) are dropped
    kept = culled.positions[:, 2]
    assert ((kept >= 0.2) & (kept <= 0.5 + culled.deltas.max())).all()
    assert set(culled.ray_indices.tolist()) == set(range(len(r)))  # every ray hits the slab
    # what is dropped held little weight: the rendered opacity barely moves
    opacity = torch.zeros(len(r)).index_add(0, everything.ray_indices, w.view(-1))
    dropped = torch.zeros(len(r)).index_add(0, everything.ray_indices, (w.view(-1) * ~expected))
    assert (dropped < 0.1).all() and (opacity > 0.99).all()  # about 0.07 of fog, measured


def test_step_size_follows_the_field_unless_chosen() -> None:
    assert make_sampler(Ball()).step_size == pytest.approx(2 * 3**0.5 / 128 / 3)
    fine = Ball()
    fine.sample_step = 0.004  # a field that needs finer steps (volsdf_grid's sharp SDF)
    assert make_sampler(fine).step_size == 0.004
    assert make_sampler(fine, step_size=0.01).step_size == 0.01


def test_refreshes_follow_warmup_every_then_update_every() -> None:
    sampler = make_sampler(Ball(), resolution=8, warmup_steps=8, warmup_every=2, update_every=5)
    refreshed: list[tuple[int, bool]] = []

    def update(*args: object, all_cells: bool, **kwargs: object) -> None:
        refreshed.append((int(sampler.steps) - 1, all_cells))

    sampler.grid.update = update
    for _ in range(20):
        sampler.maybe_update(Ball())
    expected = [(0, True), (2, True), (4, True), (6, True), (10, False), (15, False)]
    assert refreshed == expected
    with pytest.raises(ValueError, match="warmup_every"):
        make_sampler(Ball(), warmup_every=0)


@pytest.mark.parametrize("decay", [0.95, 0.5])
def test_a_refresh_keeps_decay_times_the_old_opacity(decay: float) -> None:
    ball = Ball()
    sampler = make_sampler(ball, resolution=8, warmup_steps=4, warmup_every=1, decay=decay)
    sampler.maybe_update(ball)  # every cell, the ball's density
    before = sampler.grid.opacity.clone()
    assert float(before.max()) > 0
    sampler.maybe_update(NoDensityBall())  # the ball has gone
    assert torch.allclose(sampler.grid.opacity, decay * before)


class NoDensityBall(Ball):
    """The ball after it went: zero density everywhere."""

    def density(self, positions, times=None):  # noqa: ANN001, ANN201
        return torch.zeros(len(positions), 1)


class Cloud(Field):
    """A textured dense ball in thin fog; counts the points its density was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.evaluated, self.calls = 0, 0

    def forward(self, samples):  # noqa: ANN001, ANN201
        d = self.density(samples.positions)
        return {"density": d, "rgb": torch.ones(len(d), 3) * 0.5}

    def density(self, positions, times=None):  # noqa: ANN001, ANN201
        self.evaluated += len(positions)
        self.calls += 1
        x = positions
        inner = 30.0 * (1.0 + torch.sin(7.0 * x[:, :1]) * torch.cos(5.0 * x[:, 1:2]))
        return torch.where(x.norm(dim=-1, keepdim=True) < 0.5, inner, torch.full_like(inner, 0.5))


def one_pass_keep(sampler: OccupancySampler, field: Field, r: RayBundle, ray, starts, ends):  # noqa: ANN001, ANN201
    """Which intervals to keep, from the definitions, over every sample at once."""
    tau = field.density(r.points(ray, 0.5 * (starts + ends))).view(-1) * (ends - starts)
    transmittance = torch.exp(-segment_exclusive_cumsum(tau, ray, len(r)))
    weight = transmittance * -torch.expm1(-tau)
    return transmittance > sampler.early_stop, weight > sampler.weight_threshold


@pytest.mark.parametrize("rounds", [True, False])
def test_culling_in_rounds_keeps_what_one_pass_keeps_and_skips_what_is_hidden(
    rounds: bool,
) -> None:
    cloud, r = Cloud(), rays(48)
    options = {"resolution": 16, "step_size": 0.02, "weight_threshold": 1e-4, "rounds": rounds}
    sampler = make_sampler(cloud, **options).eval()
    ray, s = sampler.march(r)
    starts, ends = s, s + sampler.step_size
    assert int(torch.bincount(ray).max()) > 3 * FIRST_ROUND  # several rounds per ray
    cloud.evaluated = cloud.calls = 0
    keep = sampler.visible(cloud, r, ray, starts, ends)
    evaluated, calls = cloud.evaluated, cloud.calls
    seen, heavy = one_pass_keep(sampler, cloud, r, ray, starts, ends)
    assert torch.equal(keep, seen & heavy)
    assert calls > 2 if rounds else calls == 1
    hidden = int((~seen).sum())
    if rounds:
        assert hidden > 0.3 * len(ray)  # behind the ball: opaque
        assert evaluated < len(ray) - 0.4 * hidden  # much of it never evaluated
    else:
        assert evaluated == len(ray)


def test_a_shorter_first_round_evaluates_less_and_keeps_the_same() -> None:
    r = rays(48)
    options = {"resolution": 16, "step_size": 0.02, "weight_threshold": 1e-4, "rounds": True}
    kept, evaluated = [], []
    for first in (FIRST_ROUND, 2):
        cloud = Cloud()
        sampler = make_sampler(cloud, first_round=first, **options).eval()
        ray, s = sampler.march(r)
        kept.append(sampler.visible(cloud, r, ray, s, s + sampler.step_size))
        evaluated.append(cloud.evaluated)
    assert torch.equal(kept[0], kept[1])
    assert evaluated[1] < evaluated[0]  # fewer samples read past the ball's surface


def test_the_first_round_needs_a_sample() -> None:
    with pytest.raises(ValueError, match="first_round"):
        make_sampler(Cloud(), first_round=0)
