"""Built-in encodings, fields and samplers: shapes, gradients, sampling behaviour."""

from __future__ import annotations

import pytest
import torch

from atlas_core.build import BuildContext
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.nerf.encodings import PositionalEncoding
from atlas_core.nerf.pipeline import Pipeline
from atlas_core.nerf.rays import RayBundle
from atlas_core.nerf.samplers import HierarchicalSampler, StratifiedSampler, sample_pdf


def make_context(atlas_pm, **sets: object) -> BuildContext:  # noqa: ANN001
    config = RunConfig()
    for key, value in sets.items():
        config.set(key.replace("__", "."), value)
    return BuildContext(config, atlas_pm(), SceneData({}))


def rays(n: int = 8) -> RayBundle:
    ones = torch.ones(n, 1)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    return RayBundle(
        torch.zeros(n, 3), dirs, ones * 2, ones * 6, ones * 1e-3, torch.zeros(n).long()
    )


def test_positional_encoding_has_identity_and_frequencies() -> None:
    enc = PositionalEncoding(3, frequencies=2)
    x = torch.tensor([[0.5, -1.0, 2.0]])
    y = enc(x)
    assert enc.out_dim == 15 and y.shape == (1, 15)
    assert torch.equal(y[0, :3], x[0])
    assert torch.allclose(y[0, 3:6], torch.sin(x[0]))  # frequency 2^0
    assert torch.allclose(y[0, 6:9], torch.sin(2 * x[0]))  # frequency 2^1
    assert torch.allclose(y[0, 9:12], torch.cos(x[0]))
    assert PositionalEncoding(3, 4, include_input=False).out_dim == 24


@pytest.mark.parametrize("name", ["tiny", "plain"])
def test_fields_output_shapes_and_gradients(atlas_pm, name: str) -> None:  # noqa: ANN001
    context = make_context(atlas_pm, field=name, field__width=32, field__depth=6)
    field = context.make_field()
    samples, _ = StratifiedSampler(5)(rays(4), field)
    out = field(samples)
    assert out["density"].shape == (20, 1) and out["rgb"].shape == (20, 3)
    assert (out["density"] >= 0).all() and ((out["rgb"] >= 0) & (out["rgb"] <= 1)).all()
    (out["density"].sum() + out["rgb"].sum()).backward()
    grads = [p.grad for p in field.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_plain_field_is_nerf_sized(atlas_pm) -> None:  # noqa: ANN001
    field = make_context(atlas_pm, field="plain").make_field()
    # 8 layers of 256 with the skip after layer 4 (63 + 256 inputs to layer 5)
    assert len(field.layers) == 8 and field.layers[5].in_features == 256 + 63
    assert field.rgb_head[0].in_features == 256 + 27


def test_stratified_sampler_bins_and_jitter() -> None:
    sampler = StratifiedSampler(16)
    r = rays(3)
    samples, _ = sampler(r, None)
    assert samples.t_starts.shape == (48, 1)
    assert (samples.t_starts >= 2).all() and (samples.t_ends <= 6 + 1e-6).all()
    assert (samples.deltas >= 0).all()
    again, _ = sampler(r, None)
    assert not torch.equal(samples.t_starts, again.t_starts)  # jittered while training
    sampler.eval()
    a, _ = sampler(r, None)
    b, _ = sampler(r, None)
    assert torch.equal(a.t_starts, b.t_starts)
    assert torch.allclose(a.deltas, torch.full_like(a.deltas, 0.25))


def test_sample_pdf_follows_weights() -> None:
    edges = torch.linspace(0, 1, 11)[None]
    weights = torch.zeros(1, 10)
    weights[0, 7] = 1.0
    t = sample_pdf(edges, weights, 100, jitter=False)
    assert ((t >= 0.7) & (t <= 0.8)).float().mean() > 0.95
    assert torch.all(t[:, 1:] >= t[:, :-1])


def test_hierarchical_sampler_concentrates_on_surface(atlas_pm) -> None:  # noqa: ANN001
    context = make_context(atlas_pm, sampler="hierarchical")
    sampler = HierarchicalSampler(context, coarse=16, fine=32)
    assert sampler.coarse_field is not None
    r = rays(2)

    class Wall(torch.nn.Module):
        def forward(self, samples):  # noqa: ANN001, ANN202
            mid = 0.5 * (samples.t_starts + samples.t_ends)
            density = torch.where((mid > 4.0) & (mid < 4.3), 50.0, 0.0)
            return {"density": density, "rgb": torch.ones(len(mid), 3)}

    sampler.coarse_field = Wall()
    samples, extras = sampler(r, None)
    assert samples.t_starts.shape[0] == 2 * 48
    mid = 0.5 * (samples.t_starts + samples.t_ends)
    assert ((mid > 3.75) & (mid < 4.5)).float().mean() > 0.5
    assert extras["coarse_rgb"].shape == (2, 3) and extras["coarse_acc"].shape == (2, 1)


def test_pipeline_adds_coarse_loss(atlas_pm) -> None:  # noqa: ANN001
    context = make_context(atlas_pm, sampler="hierarchical", field__width=8)
    context.config.sampler.options = {"coarse": 4, "fine": 4}
    pipeline = Pipeline(context)
    r = rays(4)
    r.rgba = torch.rand(4, 4)
    out, field_out = pipeline(r)
    total, terms = pipeline.loss(r, out, field_out)
    fine_only = (out["rgb"] - out["target_rgb"]).square().mean()
    coarse_only = (out["coarse_rgb"] - out["target_rgb"]).square().mean()
    assert torch.allclose(total, fine_only + coarse_only)
    assert set(terms) == {"rgb_l2"}
