"""Optimizers, schedules, gradient clipping and freezing (``train.*`` options)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from atlas_core.api import tag_parameter
from atlas_core.cli import main
from atlas_core.engine.optimizers.choice import clip_gradients
from atlas_core.engine.optimizers.masked_adam import MaskedAdam
from atlas_core.engine.optimizers.uniform_adam import UniformAdam, laplacian, smooth
from atlas_core.engine.trainer import Trainer
from atlas_core.testing.fixtures import quick_trainer


def params_after(trainer: Trainer, steps: int) -> torch.Tensor:
    torch.manual_seed(3)
    for _ in range(steps):
        trainer.train_step()
    return torch.cat([p.detach().reshape(-1) for p in trainer.pipeline.parameters()])


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW),
     ("rmsprop", torch.optim.RMSprop)],
)  # fmt: skip
def test_each_optimizer_trains_differently(
    atlas_scene: Path, tmp_path: Path, name: str, cls: type
) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path / name, train__optimizer=name, train__lr=1e-2)
    assert isinstance(trainer.optimizer, cls)
    start = params_after(trainer, 0).clone()
    first = trainer.train_step()["loss"]
    for _ in range(15):
        last = trainer.train_step()["loss"]
    assert last < first and not torch.equal(params_after(trainer, 0), start)
    if name != "adam":  # differs from the default's trajectory
        adam = quick_trainer(atlas_scene, tmp_path / "adam", train__lr=1e-2)
        assert not torch.allclose(params_after(adam, 3), params_after(quick_trainer(
            atlas_scene, tmp_path / "o", train__optimizer=name, train__lr=1e-2), 3))  # fmt: skip


def test_sparse_gradients_reach_densifying_optimizers() -> None:
    from atlas_core.engine.optimizers.choice import AdamW

    table = torch.nn.Parameter(torch.zeros(10, 2))
    optimizer = AdamW([table], lr=0.1)
    torch.nn.functional.embedding(torch.tensor([1, 3]), table, sparse=True).sum().backward()
    assert table.grad.is_sparse
    optimizer.step()
    moved = (table.detach().abs().sum(dim=1) > 0).nonzero().view(-1).tolist()
    assert moved == [1, 3]


def test_default_optimizer_is_unchanged(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path)
    assert type(trainer.optimizer) is torch.optim.Adam
    tag_parameter(trainer.pipeline.field.mlp[0].weight, masked_updates=True)
    trainer.rebuild_optimizer()
    assert type(trainer.optimizer) is MaskedAdam


def dense_laplacian(shape: tuple[int, int, int]) -> torch.Tensor:
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64)
    return torch.stack([laplacian(eye[i].view(1, *shape)).reshape(-1) for i in range(n)])


def test_laplacian_is_the_grid_graph_laplacian() -> None:
    matrix = dense_laplacian((3, 2, 2))
    assert torch.allclose(matrix, matrix.T)
    assert torch.allclose(matrix.sum(dim=1), torch.zeros(12, dtype=torch.float64))
    degrees = matrix.diagonal().tolist()
    assert degrees[0] == 3 and degrees[4] == 4  # a corner vertex, an edge-middle vertex


def test_smoothing_solves_the_preconditioner_system() -> None:
    shape, weight = (4, 3, 5), 2.5
    grad = torch.randn(60, 2, dtype=torch.float64)
    solved = smooth(grad, shape, weight)  # stops at a relative residual of 1e-6
    system = torch.eye(60, dtype=torch.float64) + weight * dense_laplacian(shape)
    assert float((system @ solved - grad).norm()) <= 1e-6 * float(grad.norm()) * 1.01
    assert torch.equal(smooth(grad, shape, 0.0), grad)


def test_uniform_adam_step_and_laplacian_weight() -> None:
    def one_step(weight: float) -> torch.Tensor:
        grid = tag_parameter(torch.nn.Parameter(torch.zeros(27, 1)), grid_shape=(3, 3, 3))
        mlp = torch.nn.Parameter(torch.zeros(2))
        optimizer = UniformAdam([grid, mlp], lr=0.1, laplacian_weight=weight)
        grid.grad = torch.zeros(27, 1)
        grid.grad[13] = 2.0  # the centre vertex only
        grid.grad[0] = 0.5
        mlp.grad = torch.tensor([1.0, -4.0])
        optimizer.step()
        assert torch.allclose(mlp.detach(), torch.tensor([-0.1, 0.1]), atol=1e-6)  # plain Adam
        return grid.detach().view(-1)

    plain, smoothed = one_step(0.0), one_step(4.0)
    # uniform second moment: the step is g / max|g|, not sign(g)
    assert torch.allclose(plain[[13, 0]], torch.tensor([-0.1, -0.025]), atol=1e-6)
    assert plain[14] == 0 and smoothed[14] < 0  # the smoothed gradient reaches neighbours
    with pytest.raises(ValueError, match="does not match"):
        tag_parameter(torch.zeros(10, 1), grid_shape=(3, 3, 3))


def test_uniform_adam_in_a_run(atlas_scene: Path, tmp_path: Path) -> None:
    config_sets = {"train__lr": 1e-2, "train__laplacian_weight": 1.0}
    trainer = quick_trainer(atlas_scene, tmp_path, **config_sets)
    trainer.config.set("train.optimizer", "uniform_adam")
    tag_parameter(trainer.pipeline.field.mlp[0].weight, grid_shape=(2, 2, 4))  # a tiny grid
    trainer.rebuild_optimizer()
    assert isinstance(trainer.optimizer, UniformAdam)
    assert trainer.optimizer.param_groups[0]["laplacian_weight"] == 1.0
    first = trainer.train_step()["loss"]
    for _ in range(20):
        last = trainer.train_step()["loss"]
    assert last < first


def test_uniform_adam_without_grids_exits_2(
    atlas_scene: Path, tmp_path: Path, quick_args: list[str], capsys: pytest.CaptureFixture
) -> None:
    argv = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), *quick_args]
    assert main([*argv, "--set", "train.optimizer=uniform_adam"]) == 2
    assert "no trainable parameter is tagged as a grid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("schedule", "middle"),
    [("exponential", math.sqrt(1e-2 * 1e-3)), ("cosine", 0.5 * (1e-2 + 1e-3)), ("none", 1e-2)],
)
def test_schedules(atlas_scene: Path, tmp_path: Path, schedule: str, middle: float) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__schedule=schedule, train__lr=1e-2,
                          train__lr_final=1e-3, train__max_steps=100)  # fmt: skip
    assert trainer.learning_rate() == pytest.approx(1e-2)
    trainer.step = 50
    assert trainer.learning_rate() == pytest.approx(middle)
    trainer.step = 100
    assert trainer.learning_rate() == pytest.approx(1e-2 if schedule == "none" else 1e-3)


def test_grad_clip_bounds_the_norm(atlas_scene: Path, tmp_path: Path) -> None:
    def norm(trainer: Trainer) -> float:
        torch.manual_seed(4)
        trainer.train_step()
        grads = [p.grad for p in trainer.pipeline.parameters() if p.grad is not None]
        return math.sqrt(sum(float(g.square().sum()) for g in grads))

    free = norm(quick_trainer(atlas_scene, tmp_path / "a"))
    clipped = norm(quick_trainer(atlas_scene, tmp_path / "b", train__grad_clip=free / 10))
    assert clipped == pytest.approx(free / 10, rel=1e-3)


def test_grad_clip_handles_sparse_gradients() -> None:
    table = torch.nn.Parameter(torch.zeros(6, 2))
    dense = torch.nn.Parameter(torch.zeros(3))
    rows = torch.tensor([1, 1, 4])  # row 1 twice: the coalesced gradient counts it once
    torch.nn.functional.embedding(rows, table, sparse=True).sum().backward()
    dense.grad = torch.full((3,), 2.0)
    expected = math.sqrt(4 + 4 + 1 + 1 + 12)
    assert clip_gradients([table, dense], 1.0) == pytest.approx(expected)
    total = table.grad.coalesce()._values().square().sum() + dense.grad.square().sum()
    assert float(total.sqrt()) == pytest.approx(1.0, rel=1e-4)


def test_train_only_freezes_the_rest(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__train_only=["field.mlp.6"])
    names = dict(trainer.pipeline.named_parameters())
    before = {name: p.detach().clone() for name, p in names.items()}
    for _ in range(5):
        trainer.train_step()
    for name, param in names.items():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == name.startswith("field.mlp.6"), name
        assert param.requires_grad == name.startswith("field.mlp.6")
    counted = sum(len(g["params"]) for g in trainer.optimizer.param_groups)
    assert counted == 2


def test_train_only_unknown_prefix_exits_2(
    atlas_scene: Path, tmp_path: Path, quick_args: list[str], capsys: pytest.CaptureFixture
) -> None:
    argv = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), *quick_args]
    assert main([*argv, "--set", 'train.train_only=["field.bogus"]']) == 2
    err = capsys.readouterr().err
    assert "train.train_only: no parameter name starts with 'field.bogus'" in err
    assert "field.mlp" in err


@pytest.mark.parametrize("optimizer", ["adam", "masked_adam", "adamw", "uniform_adam"])
def test_adam_beta2_and_eps_reach_the_optimizer(
    optimizer: str, atlas_scene: Path, tmp_path: Path
) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__beta2=0.99, train__eps=1e-15)
    weight = trainer.pipeline.field.mlp[0].weight
    if optimizer == "masked_adam":  # plain adam over a parameter tagged for masked updates
        tag_parameter(weight, masked_updates=True)
    if optimizer == "uniform_adam":
        tag_parameter(weight, grid_shape=(2, 2, 4))
    trainer.config.set("train.optimizer", optimizer.replace("masked_adam", "adam"))
    trainer.rebuild_optimizer()
    expected = {"masked_adam": MaskedAdam, "uniform_adam": UniformAdam}.get(optimizer)
    assert expected is None or isinstance(trainer.optimizer, expected)
    group = trainer.optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.99) and group["eps"] == 1e-15
    default = quick_trainer(atlas_scene, tmp_path / "default")
    assert default.optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    assert default.optimizer.param_groups[0]["eps"] == 1e-8


def test_adam_beta2_of_one_is_refused(
    atlas_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"),
            "--max-steps", "1", "--set", "train.beta2=1.0"]  # fmt: skip
    assert main(args) == 2
    assert "train.beta2 must be below 1, got 1.0" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()
