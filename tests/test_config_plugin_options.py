"""Plugin-level options: ``--set PLUGIN.KEY=VALUE`` for an enabled plugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from atlas_core.build import plugin_options
from atlas_core.config import RunConfig, load_toml, save_toml
from atlas_core.errors import ConfigError


@dataclass
class _Options:
    mode: Literal["a", "b"] = "a"
    count: int = 2


def test_enabled_plugin_section_round_trips(tmp_path) -> None:  # noqa: ANN001
    config = RunConfig(plugins=["demo"])
    config.set("demo.mode", "b")
    config.set("demo.count", 5)
    assert config.plugin_options == {"demo": {"mode": "b", "count": 5}}
    save_toml(config, tmp_path / "c.toml")
    text = (tmp_path / "c.toml").read_text()
    assert "[demo]" in text
    # a plugin section listed before `plugins` still loads
    early = RunConfig.from_dict({"demo": {"mode": "b"}, "plugins": ["demo"]})
    assert early.plugin_options == {"demo": {"mode": "b"}}
    again = load_toml(tmp_path / "c.toml")
    assert again.plugin_options == config.plugin_options
    options = plugin_options(again, "demo", _Options)
    assert options == _Options(mode="b", count=5)


def test_section_of_a_plugin_not_enabled_is_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'demo.mode'"):
        RunConfig().set("demo.mode", "b")
    with pytest.raises(ConfigError, match="unknown config key"):
        RunConfig(plugins=["train"]).set("train.bogus", 1)


def test_plugin_options_are_checked() -> None:
    config = RunConfig(plugins=["demo"])
    config.set("demo.mode", "c")
    with pytest.raises(ConfigError, match="demo.mode"):
        plugin_options(config, "demo", _Options)
    config = RunConfig(plugins=["demo"])
    config.set("demo.colour", 1)
    with pytest.raises(ConfigError, match="option 'demo.colour'.*demo.count"):
        plugin_options(config, "demo", _Options)
    assert plugin_options(RunConfig(), "demo", _Options) == _Options()
