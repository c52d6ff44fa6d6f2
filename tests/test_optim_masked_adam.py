"""MaskedAdam: plain Adam on dense parameters, touched-entries-only updates on tagged ones."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch

from atlas_core.api import tag_parameter
from atlas_core.config import RunConfig
from atlas_core.engine.optimizers.masked_adam import MaskedAdam, is_masked
from atlas_core.engine.trainer import Trainer

BETAS = (0.8, 0.99)
EPS = 1e-6
LR = 0.05


def tagged(values: torch.Tensor) -> torch.nn.Parameter:
    """A parameter that asks for masked updates."""
    param = torch.nn.Parameter(values.clone())
    tag_parameter(param, masked_updates=True)
    return param


def adam_entry(
    p: float, grads: list[float], steps: list[int], lr: float = LR
) -> tuple[float, float, float]:
    """Value, first and second moment of one entry touched with ``grads`` at ``steps``
    (1-based): Kingma and Ba 2015, Algorithm 1, moments untouched between its steps."""
    m = v = 0.0
    for g, t in zip(grads, steps, strict=True):
        m = BETAS[0] * m + (1 - BETAS[0]) * g
        v = BETAS[1] * v + (1 - BETAS[1]) * g * g
        denom = math.sqrt(v) / math.sqrt(1 - BETAS[1] ** t) + EPS
        p -= lr / (1 - BETAS[0] ** t) * m / denom
    return p, m, v


def test_is_masked_reads_the_tag() -> None:
    assert is_masked(tagged(torch.zeros(2)))
    assert not is_masked(torch.nn.Parameter(torch.zeros(2)))


def test_dense_path_equals_torch_adam() -> None:
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64)) for _ in range(2)]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    groups = lambda ps: [{"params": [ps[0]], "lr": LR}, {"params": [ps[1]], "lr": 3 * LR}]  # noqa: E731
    masked = MaskedAdam(groups(ours), betas=BETAS, eps=EPS)
    reference = torch.optim.Adam(groups(theirs), betas=BETAS, eps=EPS)
    for _ in range(6):
        for a, b in zip(ours, theirs, strict=True):
            grad = torch.randn_like(a)
            grad[0] = 0.0  # zero gradients move an untagged parameter all the same
            a.grad, b.grad = grad.clone(), grad.clone()
        masked.step()
        reference.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
        ours_state, their_state = masked.state[a], reference.state[b]
        assert torch.allclose(ours_state["exp_avg"], their_state["exp_avg"])
        assert torch.allclose(ours_state["exp_avg_sq"], their_state["exp_avg_sq"])
        assert float(ours_state["step"]) == float(their_state["step"]) == 6


def test_masked_path_moves_touched_entries_only() -> None:
    start = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    param = tagged(start)
    optimizer = MaskedAdam([param], lr=LR, betas=BETAS, eps=EPS)
    # step 1 touches all, step 2 entries 0 and 1, step 3 entries 2 (and 0 again)
    grads = [[0.3, -0.1, 0.2, 0.4], [0.5, 0.7, 0.0, 0.0], [-0.2, 0.0, 0.6, 0.0]]
    state = optimizer.state[param]
    for step, grad in enumerate(grads, start=1):
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        if step == 2:  # untouched entries kept their value and moments from step 1
            after_one = [adam_entry(float(start[i]), [grads[0][i]], [1]) for i in (2, 3)]
            for key, k in (("value", 0), ("exp_avg", 1), ("exp_avg_sq", 2)):
                now = param.detach() if key == "value" else state[key]
                kept = torch.tensor([a[k] for a in after_one], dtype=torch.float64)
                assert torch.allclose(now[2:], kept, rtol=1e-12), key
    for i in range(4):
        steps = [t for t in (1, 2, 3) if grads[t - 1][i] != 0]
        values = [grads[t - 1][i] for t in steps]
        # every step counts towards the bias correction, touched or not
        expected, m, v = adam_entry(float(start[i]), values, steps)
        assert math.isclose(float(param.detach()[i]), expected, rel_tol=1e-12), i
        assert math.isclose(float(state["exp_avg"][i]), m, rel_tol=1e-12), i
        assert math.isclose(float(state["exp_avg_sq"][i]), v, rel_tol=1e-12), i
    assert float(state["step"]) == 3


def sparse_rows(index: list[int], values: torch.Tensor, rows: int) -> torch.Tensor:
    """An uncoalesced sparse row gradient (duplicate rows allowed) of a [rows, C] tensor."""
    size = (rows, values.shape[1])
    return torch.sparse_coo_tensor(torch.tensor([index]), values, size, check_invariants=True)


def test_sparse_path_equals_masked_dense_path_with_duplicate_rows() -> None:
    torch.manual_seed(1)
    start = torch.randn(10, 3, dtype=torch.float64)
    sparse_param, dense_param = tagged(start), tagged(start)
    sparse_opt = MaskedAdam([sparse_param], lr=LR, betas=BETAS, eps=EPS)
    dense_opt = MaskedAdam([dense_param], lr=LR, betas=BETAS, eps=EPS)
    batches = [[7, 2, 7, 0], [2, 2, 9], [5, 0, 7, 5, 5]]  # rows, repeated within a batch
    for rows in batches:
        values = torch.randn(len(rows), 3, dtype=torch.float64)
        grad = sparse_rows(rows, values, 10)
        assert not grad.is_coalesced()
        sparse_param.grad = grad
        dense_param.grad = grad.to_dense()  # duplicates summed
        sparse_opt.step()
        dense_opt.step()
        assert torch.allclose(sparse_param, dense_param, rtol=1e-12, atol=1e-14)
    untouched = [1, 3, 4, 6, 8]
    assert torch.equal(sparse_param.detach()[untouched], start[untouched])
    for key in ("exp_avg", "exp_avg_sq"):
        ours, theirs = sparse_opt.state[sparse_param][key], dense_opt.state[dense_param][key]
        assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14)
        assert torch.equal(ours[untouched], torch.zeros(5, 3, dtype=torch.float64))


def test_sum_rows_equals_coalesce_and_leaves_the_scratch_clear() -> None:
    param = tagged(torch.zeros(6, 2))
    optimizer = MaskedAdam([param])
    grad = sparse_rows([4, 1, 4, 4, 0], torch.arange(10.0).view(5, 2), 6)
    rows, summed = optimizer.sum_rows(param, grad)
    reference = grad.coalesce()
    assert torch.equal(rows, reference.indices()[0])  # increasing, each once
    assert torch.equal(summed, reference.values())
    scratch, touched = optimizer.scratch[param]
    assert not scratch.any() and not touched.any()
    assert "scratch" not in optimizer.state[param]  # work buffers stay out of checkpoints


def test_state_dict_round_trip() -> None:
    torch.manual_seed(2)
    dense = torch.nn.Parameter(torch.randn(4, 2, dtype=torch.float64))
    grid = tagged(torch.randn(8, 2, dtype=torch.float64))
    optimizer = MaskedAdam([dense, grid], lr=LR, betas=BETAS, eps=EPS)

    def step(opt: MaskedAdam, params: list[torch.nn.Parameter], seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        params[0].grad = torch.randn(4, 2, generator=generator, dtype=torch.float64)
        values = torch.randn(3, 2, generator=generator, dtype=torch.float64)
        params[1].grad = sparse_rows([seed % 8, 3, seed % 8], values, 8)
        opt.step()

    for seed in range(3):
        step(optimizer, [dense, grid], seed)
    buffer = io.BytesIO()  # as a checkpoint holds it (no tensors shared with the original)
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    copies = [torch.nn.Parameter(p.detach().clone()) for p in (dense, grid)]
    copies[1].masked_updates = True
    restored = MaskedAdam(copies, lr=1.0)  # settings come back from the state dict too
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == LR and restored.param_groups[0]["betas"] == BETAS
    for seed in range(3, 6):
        step(optimizer, [dense, grid], seed)
        step(restored, copies, seed)
    assert torch.equal(copies[0], dense) and torch.equal(copies[1], grid)
    assert float(restored.state[copies[1]]["step"]) == 6


@pytest.mark.parametrize(
    "settings",
    [{"lr": -1e-3}, {"eps": -1.0}, {"betas": (1.0, 0.999)}, {"betas": (0.9, -0.1)}],
)
def test_bad_settings_raise(settings: dict) -> None:
    with pytest.raises(ValueError, match="invalid Adam settings"):
        MaskedAdam([torch.nn.Parameter(torch.zeros(2))], **settings)


def test_closure_is_refused_and_gradless_parameters_are_skipped() -> None:
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = MaskedAdam([used, unused])
    with pytest.raises(ValueError, match="closure"):
        optimizer.step(lambda: 0.0)
    used.grad = torch.ones(2)
    optimizer.step()
    assert unused not in optimizer.state and torch.equal(unused, torch.ones(2))
    assert (used < 1).all()


def trainer(atlas_pm, scene: Path, out: Path, *plugins: object) -> Trainer:  # noqa: ANN001
    config = RunConfig()
    config.data.path = str(scene)
    settings = {"train.max_steps": 2, "train.batch_rays": 128, "eval.views": 0,
                "eval.video_frames": 0}  # fmt: skip
    if plugins:
        settings.update({"field.resolution": 8, "field.initial_resolution": 8,
                         "field.upscale_steps": [], "sampler.resolution": 8,
                         "train.target_samples": 2048})  # fmt: skip
    else:
        settings.update({"sampler.samples": 8, "field.width": 16})
    for key, value in settings.items():
        config.set(key, value)
    return Trainer(config, atlas_pm(*plugins), out)


def test_trainer_picks_masked_adam_for_tagged_parameters(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    import atlas_plugin_voxel

    voxel = trainer(atlas_pm, atlas_scene, tmp_path / "voxel", atlas_plugin_voxel)
    assert isinstance(voxel.optimizer, MaskedAdam)
    grid = voxel.pipeline.field.density_grid
    voxel.fit()
    assert voxel.step == 2 and "exp_avg" in voxel.optimizer.state[grid]
    scales = {group["lr_scale"]: group["lr"] for group in voxel.optimizer.param_groups}
    assert set(scales) == {1.0, voxel.pipeline.field.grid_lr_scale}
    tiny = trainer(atlas_pm, atlas_scene, tmp_path / "tiny")
    assert tiny.config.field.name == "tiny"
    assert type(tiny.optimizer) is torch.optim.Adam
    assert not any(is_masked(p) for p in tiny.pipeline.parameters())
