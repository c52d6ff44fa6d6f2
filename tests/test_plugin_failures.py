"""A plugin's own bug versus a user's mistake: exit 1 naming the plugin and hook, with the
traceback under --debug, against one line and exit 2."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from atlas_core import plugins
from atlas_core.cli import main
from atlas_core.failures import culprit

QUICK = ["--max-steps", "2", "--eval-views", "1", "--set", "train.batch_rays=32",
         "--set", "sampler.samples=4", "--set", "field.width=8",
         "--set", "eval.video_frames=0"]  # fmt: skip


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the plugins of ``buggy_plugin`` as entry points."""
    eps = {
        name: EntryPoint(name, f"buggy_plugin:{name}", "atlas")
        for name in ("hook_bug", "user_error", "component_bug")
    }
    monkeypatch.setattr(plugins, "installed", lambda: eps)
    monkeypatch.delenv("ATLAS_DEBUG", raising=False)


def run(scene, tmp_path, *extra: str) -> list[str]:  # noqa: ANN001
    """``atlas run`` arguments for the scene."""
    return ["run", "--data", str(scene), "--out", str(tmp_path / "run"), *QUICK, *extra]


def error_lines(text: str) -> list[str]:
    """The lines the CLI printed as its error (progress bars left out)."""
    return [line for line in text.splitlines() if line.startswith("atlas: error:")]


def test_a_bug_in_a_hook_names_plugin_and_hook(buggy, atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    """Exit 1, one line naming the plugin and hook, no traceback without --debug."""
    code = main(run(atlas_scene, tmp_path, "--plugins", "hook_bug"))
    err = capsys.readouterr().err
    assert code == 1
    assert error_lines(err) == [
        "atlas: error: plugin 'hook_bug' failed in atlas_train_start: ValueError: counted the "
        "wrong rays (a bug in the plugin); rerun with --debug (or ATLAS_DEBUG=1) for the traceback"
    ]
    assert "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "flag after the command", "environment"])
def test_debug_prints_the_traceback(buggy, atlas_scene, tmp_path, capsys, monkeypatch, how) -> None:  # noqa: ANN001
    """--debug (before or after the command) or ATLAS_DEBUG=1 print the plugin's traceback."""
    args = run(atlas_scene, tmp_path, "--plugins", "hook_bug")
    if how == "flag":
        args = ["--debug", *args]
    elif how == "flag after the command":
        args = [*args, "--debug"]
    else:
        monkeypatch.setenv("ATLAS_DEBUG", "1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert 'buggy_plugin.py", line' in err and "ValueError: counted the wrong rays" in err
    assert error_lines(err)[-1].endswith("(a bug in the plugin)")


def test_atlas_debug_0_keeps_it_short(buggy, atlas_scene, tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    """ATLAS_DEBUG=0 is off."""
    monkeypatch.setenv("ATLAS_DEBUG", "0")
    assert main(run(atlas_scene, tmp_path, "--plugins", "hook_bug")) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_user_error_in_a_hook_stays_one_line(buggy, atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    """An AtlasError raised by a plugin is the user's: exit 2, its message, even with --debug."""
    assert main(["--debug", *run(atlas_scene, tmp_path, "--plugins", "user_error")]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == ["atlas: error: this scene needs buggy.level >= 2"]
    assert "Traceback" not in err


def test_a_bug_in_a_component_names_where(buggy, atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    """An exception from a plugin's component (outside any hook) names its file and line."""
    args = run(atlas_scene, tmp_path, "--plugins", "component_bug", "--set", "field=dividing")
    assert main(args) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("atlas: error: unexpected ZeroDivisionError: integer division or ")
    assert "in buggy_plugin (buggy_plugin.py:" in line and line.endswith("for the traceback")


def test_culprit_prefers_the_innermost_plugin_frame() -> None:
    """A frame in an ``atlas_plugin_*`` package names that plugin."""

    def raise_from(filename: str) -> BaseException:
        code = compile("raise KeyError('x')", filename, "exec")
        try:
            exec(code, {"__name__": "atlas_plugin_demo.field"})  # noqa: S102
        except KeyError as exc:
            return exc
        raise AssertionError

    error = raise_from("/site-packages/atlas_plugin_demo/field.py")
    assert culprit(error) == "plugin 'demo' (field.py:1)"
