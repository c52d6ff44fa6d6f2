"""Volume rendering: weights against a hand computation, packed rays, backgrounds."""

from __future__ import annotations

import math

import torch

from atlas_core.nerf.compositing import render_weights, segment_exclusive_cumsum
from atlas_core.nerf.rays import RayBundle, RaySamples
from atlas_core.nerf.renderers import VolumeRenderer


def bundle(n: int) -> RayBundle:
    """n rays along +x from the origin."""
    ones = torch.ones(n, 1)
    dirs = torch.tensor([[1.0, 0.0, 0.0]]).repeat(n, 1)
    return RayBundle(
        torch.zeros(n, 3), dirs, ones * 0, ones * 4, ones * 1e-3, torch.zeros(n).long()
    )


def test_weights_match_hand_computation() -> None:
    density = torch.tensor([0.5, 2.0, 0.0, 1.0])
    deltas = torch.tensor([1.0, 0.5, 1.0, 2.0])
    weights = render_weights(density, deltas, torch.zeros(4, dtype=torch.long), 1)
    # by hand: alpha_i = 1 - exp(-sigma_i delta_i), T_i = prod_{j<i} (1 - alpha_j)
    a = [1 - math.exp(-0.5), 1 - math.exp(-1.0), 0.0, 1 - math.exp(-2.0)]
    t = [1.0, 1 - a[0], (1 - a[0]) * (1 - a[1]), (1 - a[0]) * (1 - a[1]) * (1 - a[2])]
    expected = torch.tensor([t[i] * a[i] for i in range(4)])
    assert torch.allclose(weights, expected, atol=1e-6)


def test_packed_rays_of_different_lengths_are_independent() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 5.0])
    indices = torch.tensor([0, 0, 0, 1, 1, 2])
    got = segment_exclusive_cumsum(values, indices, 3)
    assert torch.equal(got, torch.tensor([0.0, 1.0, 3.0, 0.0, 10.0, 0.0]))
    density = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    weights = render_weights(density, torch.ones(6), indices, 3)
    alone = render_weights(torch.ones(2), torch.ones(2), torch.zeros(2).long(), 1)
    assert torch.allclose(weights[3:5], alone)


def test_renderer_outputs_and_backgrounds() -> None:
    rays = bundle(2)
    t = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    samples = RaySamples(rays, t, t + 1.0, torch.tensor([0, 0, 1, 1]))
    outputs = {
        "density": torch.tensor([[100.0], [0.0], [0.0], [0.0]]),
        "rgb": torch.tensor([[1.0, 0.0, 0.0]] * 4),
    }
    for kind, value in (("white", 1.0), ("black", 0.0)):
        renderer = VolumeRenderer(kind)
        bg = renderer.background_color(rays)
        out = renderer(outputs, samples, bg)
        assert torch.allclose(out["rgb"][0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)
        assert torch.allclose(out["rgb"][1], torch.full((3,), value))
        assert torch.allclose(out["acc"][:, 0], torch.tensor([1.0, 0.0]), atol=1e-4)
        assert abs(float(out["depth"][0]) - 0.5) < 1e-3
        assert out["weights"].shape == (4,)
    random = VolumeRenderer("random")
    noise = random.background_color(bundle(64))
    assert noise.std() > 0.1
    random.eval()
    assert torch.equal(random.background_color(rays), torch.ones(2, 3))
    learned = VolumeRenderer("learned")
    bg = learned.background_color(rays)
    bg.sum().backward()
    assert learned.background_mlp[0].weight.grad.abs().sum() > 0
