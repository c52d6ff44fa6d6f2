"""Reliability: checkpoints, resume, NaN/Inf steps, failing plugins, plugin warnings, config."""

from __future__ import annotations

import io
import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch

from atlas_core import __version__, hookimpl, plugins
from atlas_core.cli import main
from atlas_core.config import RunConfig, load_toml
from atlas_core.engine.checkpoints import (
    check_versions,
    checkpoint_paths,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import AtlasError, ConfigError, PluginError, PluginFailure
from atlas_core.nerf.losses import Loss

SMALL = {
    "train.batch_rays": 32,
    "sampler.samples": 4,
    "field.width": 8,
    "eval.views": 1,
    "eval.video_frames": 0,
}
QUICK = ["--set", "train.batch_rays=32", "--set", "sampler.samples=4", "--set", "field.width=8"]
QUICK += ["--set", "eval.video_frames=0", "--eval-views", "1"]


def run(*args: object) -> int:
    """``atlas`` in-process."""
    return main([str(a) for a in args])


def small_config(scene: Path, **values: object) -> RunConfig:
    """A config for a run of a second or so."""
    config = RunConfig()
    config.data.path = str(scene)
    for key, value in {**SMALL, **values}.items():
        config.set(key.replace("__", "."), value)
    return config


def last_line(text: str) -> str:
    """The last line of stderr (tqdm writes progress bars before it)."""
    return text.strip().splitlines()[-1]


def state(step: int) -> dict:
    """A minimal checkpoint state."""
    return {"step": step, "model": {}, "optimizer": {}, "rng": torch.get_rng_state()}


def fake_installed(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Pretend these entry points (name -> module[:object]) are installed, without versions."""
    eps = {name: EntryPoint(name, value, "atlas") for name, value in values.items()}
    monkeypatch.setattr(plugins, "installed", lambda: eps)


# -- checkpoints ------------------------------------------------------------------------


def test_save_removes_temporary_files_of_a_killed_writer(tmp_path: Path) -> None:
    stale = tmp_path / ".step-0000005.pt.abc123.tmp"
    other = tmp_path / ".notes.tmp"
    stale.write_bytes(b"half")
    other.write_bytes(b"not ours")
    save_checkpoint(tmp_path, 10, state(10), keep=2)
    assert not stale.exists() and other.exists()
    assert [p.name for p in checkpoint_paths(tmp_path)] == ["step-0000010.pt"]


def test_corrupt_checkpoint_falls_back_to_the_previous(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert load_latest(tmp_path) is None
    for step in (5, 10, 15):
        save_checkpoint(tmp_path, step, state(step), keep=3)
    newest = checkpoint_paths(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    path, loaded = load_latest(tmp_path)
    assert path.name == "step-0000010.pt" and loaded["step"] == 10
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"atlas: warning: {newest}: not a readable checkpoint")
    for path in checkpoint_paths(tmp_path):
        path.write_bytes(b"garbage")
    with pytest.raises(
        AtlasError, match=r"none of the 3 checkpoints in .* could be read; newest: "
    ):
        load_latest(tmp_path)
    buffer = io.BytesIO()
    torch.save({"step": 1}, buffer)
    (tmp_path / "step-0000001.pt").write_bytes(buffer.getvalue())
    with pytest.raises(AtlasError, match="missing step, model, optimizer, rng"):
        load_checkpoint(tmp_path / "step-0000001.pt")


class Payload:
    """Pickles as a call that writes a marker file (a checkpoint that would run code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "ran"))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    torch.save({**state(1), "extra": Payload(marker)}, tmp_path / "step-0000001.pt")
    with pytest.raises(AtlasError, match="holds more than weights, which is never loaded"):
        load_latest(tmp_path)
    assert not marker.exists()


def test_checkpoint_of_other_versions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "step-0000001.pt"
    check_versions(path, {"core": "0.1.0", "ngp": "1.2.3"}, {"core": "0.1.7", "ngp": "1.2.0"})
    with pytest.raises(AtlasError) as info:
        check_versions(path, {"core": "0.1.0", "ngp": "1.2.3"}, {"core": "0.1.0", "ngp": "1.3.0"})
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert "written with ngp 1.2.3, but ngp 1.3.0 is running (major.minor differ)" in message
    with pytest.raises(AtlasError, match=r"saved with plugins \['core', 'ngp'\]"):
        check_versions(path, {"core": "0.1.0", "ngp": "1.2.3"}, {"core": "0.1.0"})


def test_resume_refuses_other_versions_and_skips_torn_checkpoints(
    atlas_scene: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert (
        run("run", "--data", atlas_scene, "--out", out, "--max-steps", 4, "--save-every", 2, *QUICK)
        == 0
    )
    paths = checkpoint_paths(out / "checkpoints")
    assert [p.name for p in paths] == ["step-0000002.pt", "step-0000004.pt"]
    saved = load_checkpoint(paths[-1])
    paths[-1].write_bytes(paths[-1].read_bytes()[:-200])  # torn by a crash
    capsys.readouterr()
    assert run("run", "--resume", "--out", out, "--max-steps", 6) == 0
    err = capsys.readouterr().err
    assert "atlas: warning:" in err and "step-0000004.pt: not a readable checkpoint" in err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6
    saved["plugins"] = {"core": "0.0.9"}
    torch.save(saved, out / "checkpoints" / "step-0000009.pt")
    before = (out / "metrics.json").read_bytes()
    assert run("run", "--resume", "--out", out, "--max-steps", 12) == 2
    line = capsys.readouterr().err.strip()
    assert (
        "\n" not in line and f"written with core 0.0.9, but core {__version__} is running" in line
    )
    assert (out / "metrics.json").read_bytes() == before


def test_resume_before_any_checkpoint_starts_over(atlas_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = small_config(atlas_scene, train__max_steps=3)
    trainer = Trainer(config, plugins.load(), out)
    out.mkdir()
    trainer.write_config()  # killed right after writing config.toml
    assert run("run", "--resume", "--out", out) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    assert run("run", "--resume", "--out", tmp_path / "nothing") == 2


# -- non-finite steps ---------------------------------------------------------------------


class NaNLoss(Loss):
    """Zero, except NaN (kind ``loss``) or a NaN gradient (``grad``) on the plugin's bad calls."""

    def __init__(self, plugin: NaNPlugin) -> None:
        super().__init__()
        self.plugin, self.calls = plugin, 0

    def forward(self, rays, outputs, field_outputs) -> torch.Tensor:  # noqa: ANN001
        self.calls += 1
        zero = outputs["rgb"].sum() * 0.0
        if self.calls not in self.plugin.bad:
            return zero
        return zero + float("nan") if self.plugin.kind == "loss" else torch.sqrt(zero)


class NaNPlugin:
    """Registers the loss ``nan`` that goes bad on the given calls (1 = first step)."""

    name = "nanloss"

    def __init__(self, bad: set[int] | range, kind: str = "loss") -> None:
        self.bad, self.kind = bad, kind

    @hookimpl
    def atlas_register_losses(self, register) -> None:  # noqa: ANN001
        register("nan", lambda: NaNLoss(self))


STOPPER = NaNPlugin(range(8, 10**9), kind="grad")  # exposed as an entry point below


def test_bad_steps_are_skipped_and_counted(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    config = small_config(atlas_scene, train__max_steps=8, losses__nan=1.0)
    plugin = NaNPlugin({2, 5}, kind="loss")
    trainer = Trainer(config, atlas_pm(plugin), tmp_path / "run")
    trainer.train_step()
    params = [p.detach().clone() for p in trainer.pipeline.parameters()]
    adam_steps = [float(s["step"]) for s in trainer.optimizer.state.values()]
    trainer.train_step()  # NaN loss: no update at all
    assert all(
        torch.equal(a, b) for a, b in zip(params, trainer.pipeline.parameters(), strict=True)
    )
    assert [float(s["step"]) for s in trainer.optimizer.state.values()] == adam_steps
    assert trainer.faults.skipped == 1 and trainer.faults.in_row == 1
    plugin.bad.add(7)
    plugin.kind = "grad"  # a finite loss with a NaN gradient from now on
    trainer.step = 2
    trainer.fit()
    metrics = trainer.finish()
    assert metrics["steps"] == 8 and metrics["skipped_steps"] == 3
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["skipped_steps"] == 3
    assert all(torch.isfinite(p).all() for p in trainer.pipeline.parameters())


def test_too_many_bad_steps_stop_the_run(atlas_scene, tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    fake_installed(monkeypatch, nanloss=f"{__name__}:STOPPER")
    out = tmp_path / "run"
    args = ["--plugins", "nanloss", "--set", "losses.nan=1", "--set", "train.max_bad_steps=3"]
    code = run("run", "--data", atlas_scene, "--out", out, *QUICK, *args, "--max-steps", 50,
               "--save-every", 5)  # fmt: skip
    line = last_line(capsys.readouterr().err)
    assert code == 2 and "Traceback" not in line
    assert line == (
        "atlas: error: step 10: loss or gradient was NaN/Inf in 3 steps in a row "
        f"(train.max_bad_steps); last good checkpoint: {out}/checkpoints/step-0000005.pt; "
        "try a lower train.lr"
    )
    assert [p.name for p in checkpoint_paths(out / "checkpoints")] == ["step-0000005.pt"]
    assert not (out / "metrics.json").exists()


# -- plugins ------------------------------------------------------------------------------


class Faulty:
    """Raises in one lifecycle hook."""

    name = "faulty"

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def fail(self, hook: str) -> None:
        if hook == self.hook:
            raise RuntimeError("boom")

    @hookimpl
    def atlas_train_start(self, run) -> None:  # noqa: ANN001
        self.fail("atlas_train_start")

    @hookimpl
    def atlas_train_step_end(self, step) -> None:  # noqa: ANN001 - a subset of the arguments
        self.fail("atlas_train_step_end")

    @hookimpl
    def atlas_eval_end(self, run, step, metrics) -> None:  # noqa: ANN001
        self.fail("atlas_eval_end")

    @hookimpl
    def atlas_train_end(self, metrics) -> None:  # noqa: ANN001
        self.fail("atlas_train_end")


@pytest.mark.parametrize(
    "hook", ["atlas_train_start", "atlas_train_step_end", "atlas_eval_end", "atlas_train_end"]
)
def test_failing_lifecycle_hook_is_named(atlas_pm, atlas_scene, tmp_path, hook) -> None:  # noqa: ANN001
    trainer = Trainer(
        small_config(atlas_scene, train__max_steps=2), atlas_pm(Faulty(hook)), tmp_path
    )
    with pytest.raises(PluginFailure) as info:
        trainer.fit()
        trainer.finish()
    assert str(info.value) == f"plugin 'faulty' failed in {hook}: RuntimeError: boom"
    assert (info.value.plugin, info.value.hook) == ("faulty", hook)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_lifecycle_hooks_run_in_load_order(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    calls: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def atlas_train_start(self) -> None:
            calls.append(self.name)

    loaded = atlas_pm(Recorder("first"), Recorder("second"), Recorder("third"))
    loaded.call("atlas_train_start", trainer=None)
    assert calls == ["first", "second", "third"]


class FutureHook:
    """Implements a hook that no spec defines, marked optional."""

    name = "optional"

    @hookimpl(optionalhook=True)
    def atlas_future_hook(self, trainer) -> None:  # noqa: ANN001
        pass


OPTIONAL = FutureHook()


def test_plugin_warnings_and_strict_mode(atlas_pm, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.delenv("ATLAS_STRICT_PLUGINS", raising=False)
    atlas_pm(FutureHook())
    expected = (
        "atlas: warning: plugin 'optional' implements atlas_future_hook (optionalhook=True), "
        "which no hook spec defines, so it is never called"
    )
    assert capsys.readouterr().err.strip() == expected
    fake_installed(monkeypatch, fake="fake_plugin")
    plugins.load(["fake"])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("atlas: warning: plugin 'fake' (fake_plugin)")
    assert "its distribution has no version" in err
    monkeypatch.setenv("ATLAS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"atlas_future_hook .*\(ATLAS_STRICT_PLUGINS=1\)$"):
        atlas_pm(FutureHook())
    with pytest.raises(PluginError, match="'fake' .* has no version"):
        plugins.load(["fake"])
    assert capsys.readouterr().err == ""


def test_strict_plugins_through_the_cli(atlas_scene, tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    fake_installed(monkeypatch, fake="fake_plugin", optional=f"{__name__}:OPTIONAL")
    assert main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert not listed["fake"]["broken"] and "has no version" in listed["fake"]["warnings"][0]
    assert "atlas_future_hook" in listed["optional"]["warnings"][1]
    monkeypatch.setenv("ATLAS_STRICT_PLUGINS", "1")
    assert main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert (
        listed["fake"]["broken"] and listed["optional"]["broken"] and not listed["core"]["broken"]
    )
    out = tmp_path / "run"
    assert run("run", "--data", atlas_scene, "--out", out, "--plugins", "optional") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "plugin 'optional' (" in err and "ATLAS_STRICT_PLUGINS=1" in err
    assert not out.exists()


# -- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[train]\nmax_steps = "many"\n', r"train.max_steps expects int, got 'many'"),
        ("[train]\nlr = -0.5\n", r"train.lr must be >= 0, got -0.5"),
        ("[train]\nmax_bad_steps = 0\n", r"train.max_bad_steps must be >= 1, got 0"),
        ("[losses]\nrgb_l2 = nan\n", r"losses.rgb_l2 must be a finite number, got nan"),
        ('device = "gpu"\n', r"value 'gpu' for device; choose from: auto, cpu, cuda"),
        ("[eval]\nview = 3\n", r"unknown config key 'eval.view'.*did you mean 'eval.views'"),
    ],
)
def test_bad_toml_values_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_toml(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_unknown_loss_lists_the_registered_ones(atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    for name, hint in (("nosuch", ""), ("rgb_l3", "; did you mean 'rgb_l")):
        code = run(
            "run", "--data", atlas_scene, "--out", tmp_path / "x", "--set", f"losses.{name}=1"
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err
        assert err.startswith(
            f"atlas: error: unknown loss 'losses.{name}'; choose from: "
            f"distortion, fft, ms_ssim, rgb_l1, rgb_l2, rgb_rmse, ssim{hint}"
        )
    assert not (tmp_path / "x").exists()
