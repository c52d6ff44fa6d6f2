"""Config: TOML round trip, --set parsing, errors that name the key."""

from __future__ import annotations

import pytest

from atlas_core.config import RunConfig, apply_overrides, load_toml, save_toml
from atlas_core.errors import ConfigError


def test_toml_round_trip(tmp_path) -> None:  # noqa: ANN001
    config = RunConfig(plugins=["a"], versions={"core": "0.1.0"})
    apply_overrides(
        config,
        ["field=plain", "field.width=128", "sampler.samples=32", "data.downscale=2",
         "losses.rgb_l1=0.5", "train.lr=1e-3", "eval.views=4", "renderer.background=black"],
    )  # fmt: skip
    path = tmp_path / "config.toml"
    save_toml(config, path)
    again = load_toml(path)
    assert again.to_dict() == config.to_dict()
    assert again.field.options == {"width": 128} and again.data.options == {"downscale": 2}
    assert again.losses == {"rgb_l2": 1.0, "rgb_l1": 0.5}


def test_set_parses_values_and_marks_explicit() -> None:
    config = RunConfig()
    apply_overrides(config, ["train.max_steps=10", "train.lr=1", "seed=3", "name=my run"])
    assert config.train.max_steps == 10 and config.train.lr == 1.0 and config.seed == 3
    assert config.name == "my run"
    assert "field" not in config.explicit
    assert config.explicit == {"train.max_steps", "train.lr"}  # plugins leave these alone
    apply_overrides(config, ["field.name=plain"])
    assert config.explicit == {"field", "train.max_steps", "train.lr"}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("train.max_step=3", r"train.max_step'.*did you mean 'train.max_steps'"),
        ("trian.lr=3", r"unknown config key 'trian.lr'"),
        ("train.max_steps=abc", r"train.max_steps expects int, got 'abc'"),
        ("train.max_steps=0", r"train.max_steps must be >= 1"),
        ("device=gpu", r"value 'gpu' for device.*auto, cpu, cuda"),
        ("novalue", r"expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(pair: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(RunConfig(), [pair])


def test_bad_toml_names_the_file(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nmax_steps = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_toml(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[train]\nmax_stepz = 3\n")
    with pytest.raises(ConfigError, match="unknown.toml: unknown config key 'train.max_stepz'"):
        load_toml(unknown)
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "missing.toml")


def test_component_options_checked_against_factory(atlas_pm) -> None:  # noqa: ANN001
    from atlas_core.build import BuildContext
    from atlas_core.data.scene import SceneData
    from atlas_core.nerf.pipeline import Pipeline

    for pair, message in [
        ("field.widht=3", r"option 'field.widht' for field 'tiny'.*did you mean 'field.width'"),
        ("field.width=wide", r"field.width expects int"),
        ("renderer.background=pink", r"value 'pink' for renderer.background"),
        ("field.width=0", r"field 'tiny': width and depth must be >= 1"),
        ("sampler=stratifed", r"unknown sampler 'stratifed'.*did you mean 'stratified'"),
    ]:
        config = RunConfig()
        apply_overrides(config, [pair])
        with pytest.raises(ConfigError, match=message):
            Pipeline(BuildContext(config, atlas_pm(), SceneData({})))


def test_a_recorded_run_keeps_every_train_and_eval_value() -> None:
    chosen = RunConfig()  # all defaults: a user's file names nothing explicitly ...
    raw = chosen.to_dict()
    assert "eval.supersample" not in RunConfig.from_dict(raw).explicit
    recorded = RunConfig.from_dict({**raw, "versions": {"atlas-core": "0"}})
    assert {"eval.supersample", "train.lr"} <= recorded.explicit  # ... a run's record does
