"""Plugin loading and every hook, with in-process test plugins."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
import torch

from atlas_core import hookimpl, plugins
from atlas_core.api import tag_parameter
from atlas_core.build import BuildContext, configure
from atlas_core.cli import main
from atlas_core.config import RunConfig
from atlas_core.data.scene import SceneData
from atlas_core.errors import PluginError, PluginFailure
from atlas_core.nerf.fields import TinyField
from atlas_core.nerf.pipeline import Pipeline


def fake_installed(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Pretend these entry points (name -> module) are installed."""
    eps = {name: EntryPoint(name, value, "atlas") for name, value in values.items()}
    monkeypatch.setattr(plugins, "installed", lambda: eps)


class FieldPlugin:
    """Registers a field and an encoding."""

    name = "fieldplugin"

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        register("mine", TinyField, description="test field")

    @hookimpl
    def atlas_register_encodings(self, register) -> None:  # noqa: ANN001
        from atlas_core.nerf.encodings import IdentityEncoding

        register("raw", IdentityEncoding)


class Chooser:
    """Configures the field slot to ``choice``."""

    def __init__(self, name: str, choice: str) -> None:
        self.name, self.choice = name, choice

    @hookimpl
    def atlas_configure(self, config) -> None:  # noqa: ANN001
        config.field.name = self.choice
        config.losses["rgb_l1"] = 0.5


def test_installed_is_not_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_installed(monkeypatch, fake="fake_plugin")
    assert "fake" not in plugins.load().infos
    loaded = plugins.load(["fake"])
    assert loaded.registry.get("fields", "fake").plugin == "fake"
    assert list(loaded.infos) == ["core", "fake"]


def test_missing_plugin_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_installed(monkeypatch)
    with pytest.raises(PluginError, match=r"not installed: atlas plugins install nope \(pip"):
        plugins.load(["nope"])


def test_broken_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_installed(monkeypatch, broken="no_such_module_for_atlas")
    with pytest.raises(PluginError, match="plugin 'broken' failed to import: ModuleNotFound"):
        plugins.load(["broken"])


def test_plugin_failing_in_registration_is_named(atlas_pm) -> None:  # noqa: ANN001
    class Raiser:
        name = "raiser"

        @hookimpl
        def atlas_register_losses(self, register) -> None:  # noqa: ANN001
            raise RuntimeError("boom")

    with pytest.raises(PluginFailure, match="plugin 'raiser' failed in atlas_register_losses"):
        atlas_pm(Raiser())


def test_misspelt_hook_fails_loudly(atlas_pm) -> None:  # noqa: ANN001
    class Typo:
        name = "typo"

        @hookimpl
        def atlas_register_feilds(self, register) -> None:  # noqa: ANN001
            pass

    with pytest.raises(PluginError, match="atlas_register_feilds"):
        atlas_pm(Typo())


def test_duplicate_component_names_both_plugins(atlas_pm) -> None:  # noqa: ANN001
    class Clash:
        name = "clash"

        @hookimpl
        def atlas_register_fields(self, register) -> None:  # noqa: ANN001
            register("tiny", TinyField)

    with pytest.raises(PluginError, match="'tiny' is registered by both 'core' and 'clash'"):
        atlas_pm(Clash())


def test_registration_hooks_fill_registry(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(FieldPlugin())
    assert loaded.infos["fieldplugin"].components == {"encodings": ["raw"], "fields": ["mine"]}
    core = loaded.registry.by_plugin("core")
    assert core["fields"] == ["plain", "tiny"] and core["datasets"] == [
        "blender",
        "colmap",
        "llff",
        "nerfstudio",
    ]
    assert core["samplers"] == ["hierarchical", "occupancy", "stratified"]
    assert core["renderers"] == ["volume"] and core["losses"] == [
        "distortion", "fft", "ms_ssim", "rgb_l1", "rgb_l2", "rgb_rmse", "ssim"
    ]  # fmt: skip
    assert core["encodings"] == ["identity", "positional"]


def test_configure_fills_default_slot(atlas_pm) -> None:  # noqa: ANN001
    config = RunConfig()
    configure(config, atlas_pm(FieldPlugin(), Chooser("a", "mine")))
    assert config.field.name == "mine" and config.losses["rgb_l1"] == 0.5


def test_configure_conflict_names_both(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(FieldPlugin(), Chooser("a", "mine"), Chooser("b", "plain"))
    with pytest.raises(PluginError, match=r"'a' and 'b' both choose the field.*--set field="):
        configure(RunConfig(), loaded)


def test_explicit_user_choice_wins(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(FieldPlugin(), Chooser("a", "mine"), Chooser("b", "plain"))
    config = RunConfig()
    config.set("field", "tiny")
    configure(config, loaded)
    assert config.field.name == "tiny"


def test_wrap_field_applies_in_plugin_order(atlas_pm) -> None:  # noqa: ANN001
    class Scale(torch.nn.Module):
        def __init__(self, inner, factor) -> None:  # noqa: ANN001
            super().__init__()
            self.inner, self.factor = inner, factor

        def forward(self, samples):  # noqa: ANN001, ANN202
            out = self.inner(samples)
            return {**out, "density": out["density"] * self.factor}

    class Wrapper:
        def __init__(self, name: str, factor: float) -> None:
            self.name, self.factor = name, factor

        @hookimpl
        def atlas_wrap_field(self, field, config):  # noqa: ANN001, ANN201
            return Scale(field, self.factor)

    loaded = atlas_pm(Wrapper("w1", 2.0), Wrapper("w2", 3.0))
    pipeline = Pipeline(BuildContext(RunConfig(), loaded, SceneData({})))
    assert pipeline.field.factor == 3.0 and pipeline.field.inner.factor == 2.0


def test_lifecycle_hooks_are_called(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.engine.trainer import Trainer

    calls: list[tuple] = []

    class Recorder:
        name = "recorder"

        @hookimpl
        def atlas_train_start(self, run) -> None:  # noqa: ANN001
            calls.append(("start", run.step))

        @hookimpl
        def atlas_train_step_end(self, run, step, metrics) -> None:  # noqa: ANN001
            calls.append(("step", step, sorted(metrics)))

        @hookimpl
        def atlas_eval_end(self, run, step, metrics) -> None:  # noqa: ANN001
            calls.append(("eval", step, round(metrics["psnr"], 3)))

        @hookimpl
        def atlas_train_end(self, run, metrics) -> None:  # noqa: ANN001
            calls.append(("end", metrics["steps"]))

    config = RunConfig()
    config.data.path = str(atlas_scene)
    for key, value in {
        "train.max_steps": 3,
        "train.batch_rays": 64,
        "sampler.samples": 8,
        "eval.views": 1,
        "eval.video_frames": 0,
        "train.eval_every": 2,
    }.items():
        config.set(key, value)
    trainer = Trainer(config, atlas_pm(Recorder()), tmp_path / "run")
    trainer.fit()
    trainer.finish()
    assert calls[0] == ("start", 0)
    assert [c[1] for c in calls if c[0] == "step"] == [1, 2, 3]
    assert calls[1][2] == ["loss", "lr", "rays", "rgb_l2", "samples"]
    assert [c[1] for c in calls if c[0] == "eval"] == [2, 3]
    assert calls[-1] == ("end", 3)


def test_atlas_plugins_lists_broken_and_json(monkeypatch, capsys) -> None:  # noqa: ANN001
    fake_installed(monkeypatch, fake="fake_plugin", broken="no_such_module_for_atlas")
    assert main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(listed) >= {"core", "wandb", "fake", "broken"}
    assert listed["fake"]["components"] == {"fields": ["fake"]} and not listed["fake"]["broken"]
    assert listed["broken"]["broken"] and "ModuleNotFoundError" in listed["broken"]["error"]
    assert listed["core"]["distribution"] == "nerf-atlas" and listed["core"]["version"]
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "BROKEN" in text and "fields     plain, tiny" in text


def test_plugin_components_of_every_kind_run(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.data.blender import load_blender
    from atlas_core.engine.trainer import Trainer
    from atlas_core.nerf.encodings import PositionalEncoding
    from atlas_core.nerf.losses import Loss
    from atlas_core.nerf.renderers import VolumeRenderer
    from atlas_core.nerf.samplers import StratifiedSampler

    used: set[str] = set()

    class SpyEncoding(PositionalEncoding):
        def __init__(self, in_dim: int = 3, frequencies: int = 10) -> None:
            used.add("encoding")
            super().__init__(in_dim, frequencies)

    class SpyField(TinyField):
        def __init__(self, context, width: int = 64) -> None:  # noqa: ANN001
            used.add("field")
            super().__init__(context, width)

    class SpySampler(StratifiedSampler):
        def __init__(self, samples: int = 64) -> None:
            used.add("sampler")
            super().__init__(samples)

    class SpyRenderer(VolumeRenderer):
        def __init__(self) -> None:
            used.add("renderer")
            super().__init__("white")

    class ZeroLoss(Loss):
        def forward(self, rays, outputs, field_outputs):  # noqa: ANN001, ANN201
            used.add("loss")
            return outputs["rgb"].sum() * 0.0

    def toy_dataset(path: str, downscale: int = 1):  # noqa: ANN202
        used.add("dataset")
        return load_blender(path, downscale=downscale)

    class Everything:
        name = "everything"

        @hookimpl
        def atlas_register_encodings(self, register) -> None:  # noqa: ANN001
            register("enc", SpyEncoding)

        @hookimpl
        def atlas_register_fields(self, register) -> None:  # noqa: ANN001
            register("fld", SpyField)

        @hookimpl
        def atlas_register_samplers(self, register) -> None:  # noqa: ANN001
            register("smp", SpySampler)

        @hookimpl
        def atlas_register_renderers(self, register) -> None:  # noqa: ANN001
            register("rnd", SpyRenderer)

        @hookimpl
        def atlas_register_losses(self, register) -> None:  # noqa: ANN001
            register("zero", ZeroLoss)

        @hookimpl
        def atlas_register_datasets(self, register) -> None:  # noqa: ANN001
            register("toy", toy_dataset)

    config = RunConfig()
    config.data.path, config.data.kind = str(atlas_scene), "toy"
    pairs = {"field": "fld", "encoding": "enc", "sampler": "smp", "renderer": "rnd",
             "sampler.samples": 4, "data.downscale": 2, "losses.zero": 1.0,
             "train.max_steps": 2, "train.batch_rays": 16, "eval.views": 1,
             "eval.video_frames": 0}  # fmt: skip
    for key, value in pairs.items():
        config.set(key, value)
    trainer = Trainer(config, atlas_pm(Everything()), tmp_path / "run")
    trainer.fit()
    assert trainer.train_views.width == 12
    assert used == {"encoding", "field", "sampler", "renderer", "loss", "dataset"}


def test_parameters_with_lr_scale_get_their_own_rate(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.engine.trainer import Trainer

    config = RunConfig()
    config.data.path = str(atlas_scene)
    config.set("train.batch_rays", 16)
    trainer = Trainer(config, atlas_pm(), tmp_path / "run")
    first = next(trainer.pipeline.field.parameters())
    tag_parameter(first, lr_scale=10.0)
    trainer.rebuild_optimizer()
    trainer.train_step()
    rates = {g["lr_scale"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert set(rates) == {1.0, 10.0}
    assert abs(rates[10.0] - 10 * rates[1.0]) < 1e-12
    scaled = [g for g in trainer.optimizer.param_groups if g["lr_scale"] == 10.0][0]
    assert scaled["params"] == [first]
