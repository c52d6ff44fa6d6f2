"""The run handle lifecycle hooks get, its verbs, the per-step views hook and growth."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from atlas_core import hookimpl
from atlas_core.api import Run, Views, tag_parameter
from atlas_core.config import RunConfig
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import PluginError
from atlas_core.nerf.fields import TinyField

SMALL = {
    "train.max_steps": 3,
    "train.batch_rays": 32,
    "sampler.samples": 8,
    "field.width": 16,
    "eval.views": 1,
    "eval.video_frames": 0,
}


def small_trainer(scene: Path, out: Path, plugins: object, **values: object) -> Trainer:
    """A trainer of a few fast steps on ``scene``."""
    config = RunConfig()
    config.data.path = str(scene)
    for key, value in {**SMALL, **values}.items():
        config.set(key.replace("__", "."), value)
    return Trainer(config, plugins, out)


def test_hooks_see_the_run_not_the_trainer(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """Every lifecycle hook gets the same Run handle with the run's state."""
    seen: list[tuple] = []

    class Watcher:
        name = "watcher"

        @hookimpl
        def atlas_train_start(self, run: Run) -> None:
            seen.append(("start", run, run.step, run.main, run.finished))
            run.store["watcher"] = "mine"

        @hookimpl
        def atlas_train_step_end(self, run: Run, step: int) -> None:
            seen.append(("step", run, step == run.step, run.train_seconds > 0))

        @hookimpl
        def atlas_train_end(self, run: Run, metrics: dict) -> None:
            seen.append(("end", run, run.store["watcher"], run.finished, run.out))

    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm(Watcher()))
    trainer.fit()
    trainer.finish()
    handles = {id(entry[1]) for entry in seen}
    assert handles == {id(trainer.run)} and not isinstance(seen[0][1], Trainer)
    assert seen[0][2:] == (0, True, False)
    assert [entry[2:] for entry in seen if entry[0] == "step"] == [(True, True)] * 3
    assert seen[-1][2:] == ("mine", True, tmp_path / "run")
    run = trainer.run
    assert run.config is trainer.config and run.scene is trainer.scene
    assert run.pipeline is trainer.pipeline and run.device == trainer.device
    assert run.versions == trainer.plugins.versions
    with pytest.raises(AttributeError):
        run.step = 5  # type: ignore[misc]


def test_add_metric_reaches_loggers_and_history(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """A metric added by one plugin is seen in the same step by a ``trylast`` logger."""
    logged: list[dict] = []

    class Reporter:
        name = "reporter"

        @hookimpl
        def atlas_train_step_end(self, run: Run, step: int) -> None:
            run.add_metric("twice_step", 2.0 * step)

    class Logger:
        name = "logger"

        @hookimpl(trylast=True)
        def atlas_train_step_end(self, metrics: dict) -> None:
            logged.append(dict(metrics))

    # the logger loads first; trylast still puts it after the reporter
    trainer = small_trainer(
        atlas_scene, tmp_path / "run", atlas_pm(Logger(), Reporter()), train__log_every=1
    )
    trainer.fit()
    assert [entry["twice_step"] for entry in logged] == [2.0, 4.0, 6.0]
    assert [entry["twice_step"] for entry in trainer.history] == [2.0, 4.0, 6.0]


def test_add_metric_refuses_misuse(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """Outside a step, a second report of a name, or a non-number: a PluginError."""
    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm())
    with pytest.raises(PluginError, match="outside atlas_train_step_end"):
        trainer.run.add_metric("x", 1.0)

    class Twice:
        name = "twice"

        @hookimpl
        def atlas_train_step_end(self, run: Run) -> None:
            run.add_metric("loss", 1.0)

    trainer = small_trainer(atlas_scene, tmp_path / "run2", atlas_pm(Twice()))
    with pytest.raises(PluginError, match="metric 'loss' is already reported at step 1"):
        trainer.fit()

    class Text:
        name = "text"

        @hookimpl
        def atlas_train_step_end(self, run: Run) -> None:
            run.add_metric("label", "high")  # type: ignore[arg-type]

    trainer = small_trainer(atlas_scene, tmp_path / "run3", atlas_pm(Text()))
    with pytest.raises(PluginError, match="must be a number"):
        trainer.fit()


def test_train_views_hook_supplies_each_steps_views(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """Rays of a step come from the views a plugin returns for it."""
    drawn: list[set[int]] = []

    class OneView:
        name = "oneview"

        @hookimpl
        def atlas_train_views(self, run: Run, step: int) -> Views:
            views = run.scene.split("train")
            index = step % 2  # image 0 on even steps, image 1 on odd ones
            return Views(views.images[index : index + 1], views.c2w[index : index + 1], views.focal)

    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm(OneView()))
    original = trainer.train_views
    for _ in range(2):
        rays = trainer.sample_batch()
        drawn.append({tuple(p.tolist()) for p in rays.origins.unique(dim=0)})
        trainer.step += 1
    eyes = [tuple(original.c2w[i, :3, 3].tolist()) for i in (0, 1)]
    assert drawn == [{eyes[0]}, {eyes[1]}]
    assert trainer.train_views is original  # nothing was assigned


def test_two_plugins_supplying_views_clash(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """At most one plugin supplies a step's views; a wrong return type is named."""

    class Supplier:
        def __init__(self, name: str, value: object = None) -> None:
            self.name, self.value = name, value

        @hookimpl
        def atlas_train_views(self, run: Run) -> object:
            return self.value if self.value is not None else run.scene.split("train")

    trainer = small_trainer(atlas_scene, tmp_path / "a", atlas_pm(Supplier("p"), Supplier("q")))
    with pytest.raises(PluginError, match="plugins 'p' and 'q' both supply the training views"):
        trainer.fit()
    trainer = small_trainer(atlas_scene, tmp_path / "b", atlas_pm(Supplier("r", [1, 2])))
    with pytest.raises(PluginError, match="plugin 'r': atlas_train_views returned list"):
        trainer.fit()


class GrowingField(TinyField):
    """A TinyField whose extra parameter doubles in size at step 2 (a ``Grows`` field)."""

    def __init__(self, context, width: int = 16) -> None:  # noqa: ANN001
        super().__init__(context, width=width)
        self.extra = tag_parameter(nn.Parameter(torch.zeros(4)), lr_scale=3.0)
        self.calls: list[int] = []

    def grow(self, step: int) -> bool:
        """Replace ``extra`` by a larger one at step 2."""
        self.calls.append(step)
        if step != 2:
            return False
        self.extra = tag_parameter(nn.Parameter(torch.zeros(8)), lr_scale=3.0)
        return True

    def forward(self, samples) -> dict[str, Tensor]:  # noqa: ANN001
        """TinyField's outputs; ``extra`` joins the graph through the density."""
        out = super().forward(samples)
        out["density"] = out["density"] + 0 * self.extra.sum()
        return out


def test_growing_fields_get_a_fresh_optimizer(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    """The core calls ``grow`` after every step and rebuilds the optimiser when it grew."""

    class Grower:
        name = "grower"

        @hookimpl
        def atlas_register_fields(self, register) -> None:  # noqa: ANN001
            register("growing", GrowingField)

    trainer = small_trainer(atlas_scene, tmp_path / "run", atlas_pm(Grower()), field="growing")
    field = trainer.pipeline.field
    trainer.fit()
    assert field.calls == [1, 2, 3]
    params = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert any(p is field.extra for p in params) and field.extra.numel() == 8
    scaled = [g for g in trainer.optimizer.param_groups if g["lr_scale"] == 3.0]
    assert scaled and scaled[0]["params"] == [field.extra]
