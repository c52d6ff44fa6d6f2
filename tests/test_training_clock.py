"""The training clock (``--time-budget``, rays per second) counts all training work."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_run_handle import small_trainer

from atlas_core import hookimpl
from atlas_core.api import Run
from atlas_core.engine.trainer import Trainer


class SlowStepHook:
    """In-process plugin: 0.1 s of work after every step, as a grid conversion would do."""

    name = "slow"

    @hookimpl
    def atlas_train_step_end(self, run: Run, step: int) -> None:
        time.sleep(0.1)


def test_step_hook_work_counts_as_training(atlas_pm, atlas_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Work done in atlas_train_step_end is on the training clock and in the budget."""
    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm(SlowStepHook()))
    trainer.fit()
    assert trainer.step == 3 and trainer.train_seconds >= 0.3
    budget = small_trainer(
        atlas_scene, tmp_path / "budget", atlas_pm(SlowStepHook()),
        train__max_steps=1000, train__time_budget=0.35,
    )  # fmt: skip
    budget.fit()
    assert budget.step <= 4  # 0.1 s of hook work per step ends a 0.35 s budget


def test_evaluation_from_a_step_hook_is_not_training(
    atlas_pm,
    atlas_scene: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """An evaluation a hook starts (a sweep's rung) is off the training clock."""

    def slow_evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(0.2)
        return {"psnr": 20.0, "ssim": 0.5, "views": 1, "per_view_psnr": [20.0]}

    monkeypatch.setattr("atlas_core.engine.trainer.evaluate", slow_evaluate)
    holder: list[Trainer] = []

    class Evaluator:
        name = "evaluator"

        @hookimpl
        def atlas_train_step_end(self, run: Run, step: int) -> None:
            holder[0].evaluate(write_images=False)

    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm(Evaluator()))
    holder.append(trainer)
    start = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - start
    assert trainer.eval_seconds >= 0.6
    assert trainer.train_seconds <= wall - trainer.eval_seconds + 1e-3
