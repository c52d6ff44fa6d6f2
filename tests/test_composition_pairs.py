"""Every pair of installed plugins trains together for 20 steps or clashes at start-up.

The composition rule (../shared/DESIGN.md): a pair either runs, or stops before the
first step with the core's one-line error (exit code 2 through the CLI) naming both
plugins and the slot they clash on; never any other exception, and never one plugin's
choice of a slot silently dropped for the other's. Runs are in-process on a tiny scene
whose frames carry times, so dynamic plugins get their data too (a plugin that
registers a data kind is given that data kind).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from atlas_core import hookimpl, plugins
from atlas_core.build import BuildContext, configure, factory_options
from atlas_core.cli import main
from atlas_core.config import SLOTS, RunConfig
from atlas_core.data.synth import write_scene
from atlas_core.engine import trainer as train_module
from atlas_core.engine.trainer import Trainer
from atlas_core.errors import AtlasError, PluginError
from atlas_core.nerf.fields import TinyField
from atlas_core.nerf.pipeline import Pipeline

INSTALLED = sorted(plugins.installed())
PAIRS = list(itertools.combinations(INSTALLED, 2))
STEPS = 20
QUICK = {
    "train.max_steps": STEPS,
    "train.batch_rays": 64,
    "train.log_every": 1,
    "train.save_every": 1000,
    "eval.views": 1,
    "eval.video_frames": 0,
}
# Size options shrunk (only where the component's default is larger) so that the whole
# enumeration stays quick; a component whose options cannot take these shows up as a
# failing pair, and this table is the place to adjust.
SMALL = {
    "width": 16,
    "hidden": 16,
    "head_width": 16,
    "color_width": 16,
    "decoder_width": 16,
    "features": 16,
    "latent_size": 8,
    "samples": 16,
    "coarse": 8,
    "fine": 8,
    "levels": 4,
    "log2_table": 12,
    "finest_resolution": 64,
    "resolution": 16,
    "initial_resolution": 8,
}
SILENT_DROP = (
    "two plugins claim one slot but the run kept one claim without a clash: the later "
    "plugin fills the slot only while it is at its default, so core configure() never "
    "sees it write; claim the slot unless the user chose it ('SLOT' not in "
    "config.explicit) and let the core report the clash"
)
TARGET_SAMPLES = 1024  # cap on a sample budget a plugin sets (train.target_samples)
CLASH_WORDS = (*SLOTS, "loss", "data kind", "dataset")

# Pairs the issue requires to train, with the settings that make them meaningful
# (ngp's own field ignores the run's encoding, so its hash encoding feeds the other's
# field instead; mip and fourier with ngp replace one position encoding by another).
REQUIRED = [
    (("mip", "volsdf"), {}),
    (("fourier", "volsdf"), {}),
    (("fourier", "nerfae"), {}),
    (("mip", "nerfae"), {}),
    (("siren", "volsdf"), {}),
    (("ngp", "volsdf"), {"field": "volsdf", "encoding": "hash"}),
    (("nerfae", "ngp"), {"field": "nerfae", "encoding": "hash"}),
    (("ngp", "siren"), {"field": "siren", "encoding": "hash"}),
]


@pytest.fixture(scope="module")
def pair_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16x16 procedural scene whose frames also carry a time (D-NeRF layout)."""
    out = write_scene(tmp_path_factory.mktemp("pairs") / "scene", size=16,
                      views={"train": 6, "test": 2})  # fmt: skip
    for meta_path in out.glob("transforms_*.json"):
        meta = json.loads(meta_path.read_text())
        count = len(meta["frames"])
        for i, frame in enumerate(meta["frames"]):
            frame["time"] = i / max(count - 1, 1)
        meta_path.write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="module")
def scene_of(tmp_path_factory: pytest.TempPathFactory, pair_scene: Path) -> Callable[..., Path]:
    """``scene_of(names)``: the tiny scene of the data kind a run of ``names`` is given,
    written once per kind by the generator its plugin registers (``synth=``)."""
    root = tmp_path_factory.mktemp("kinds")
    scenes = {"blender": pair_scene}

    def scene(names: tuple[str, ...]) -> Path:
        kind = pair_data_kind(names)
        if kind not in scenes:
            component = plugins.load(names).registry.get("datasets", kind)
            assert component.synth is not None, f"data kind '{kind}' registers no generator"
            scenes[kind] = Path(component.synth(root / kind, size=16, seed=0))
        return scenes[kind]

    return scene


def data_kind(loaded: plugins.AtlasPlugins, names: tuple[str, ...]) -> str:
    """A data kind registered by one of the plugins, else the core's blender."""
    for name in names:
        kinds = loaded.registry.by_plugin(name).get("datasets", [])
        if kinds:
            return kinds[0]
    return "blender"


def small_options(config: RunConfig, loaded: plugins.AtlasPlugins) -> dict[str, Any]:
    """SMALL sizes for the components of a configured run, where they are smaller."""
    settings = {}
    for slot, kind in SLOTS.items():
        name = getattr(config, slot).name
        if name not in loaded.registry.names(kind):
            continue
        for key, (_, default) in factory_options(loaded.registry.get(kind, name).factory).items():
            small = SMALL.get(key)
            if small is not None and isinstance(default, int) and small < default:
                settings[f"{slot}.{key}"] = small
    return settings


@pytest.fixture
def shrunk_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trainers configure exactly as a run does, then build the chosen components small.

    Shrinking after ``configure`` keeps the plugins' choices those of a plain run (a
    plugin may, say, keep a sampler whose options the user set).
    """

    def assemble(config: RunConfig, loaded: plugins.AtlasPlugins, scene: Any) -> Any:
        for key, value in small_options(config, loaded).items():
            config.set(key, value)
        if config.train.target_samples > TARGET_SAMPLES:  # a plugin's steady sample budget
            config.set("train.target_samples", TARGET_SAMPLES)
        return Pipeline(BuildContext(config, loaded, scene))

    monkeypatch.setattr(train_module, "assemble", assemble)


def pair_data_kind(names: tuple[str, ...]) -> str:
    """The data kind a run of ``names`` is given (blender when they do not load)."""
    try:
        return data_kind(plugins.load(names), names)
    except AtlasError:
        return "blender"


def claims(name: str) -> dict[str, str]:
    """The slots a plugin claims when it is the only one enabled: slot -> component (slots
    it only prefers, ``prefer``, give way to another plugin's claim by design)."""
    config, default = RunConfig(), RunConfig()
    config.set("data.kind", pair_data_kind((name,)))
    configure(config, plugins.load([name]))
    changed = {slot: getattr(config, slot).name for slot in SLOTS if slot not in config.preferred}
    return {slot: value for slot, value in changed.items() if value != getattr(default, slot).name}


def dropped_claims(pair: tuple[str, str], config: RunConfig) -> list[str]:
    """Slots both plugins fill, with different components, yet the pair's run has one."""
    first, second = (claims(name) for name in pair)
    return [
        f"{slot}: '{pair[0]}' wants '{first[slot]}', '{pair[1]}' wants '{second[slot]}', "
        f"the run got '{getattr(config, slot).name}'"
        for slot in sorted(first.keys() & second.keys())
        if first[slot] != second[slot]
    ]


def base_config(names: tuple[str, ...], scene: Path, extra: dict[str, Any]) -> RunConfig:
    """The quick run config of a plugin set (before sizes are shrunk)."""
    config = RunConfig()
    config.data.path = str(scene)
    config.plugins = list(names)
    for key, value in {**QUICK, **extra}.items():
        config.set(key, value)
    return config


def attempt(names: tuple[str, ...], scene: Path, out: Path, extra: dict[str, Any]) -> Any:
    """Start a run of ``names``: a Trainer, or the AtlasError that stopped it at start-up."""
    config = base_config(names, scene, extra)
    try:
        loaded = plugins.load(names)
        config.set("data.kind", data_kind(loaded, names))
        return Trainer(config, loaded, out)
    except AtlasError as exc:
        return exc


def train(trainer: Trainer) -> None:
    """Fit STEPS steps and check every step's loss was finite and applied."""
    trainer.fit()
    losses = [entry["loss"] for entry in trainer.history]
    names = trainer.config.plugins
    assert trainer.step == STEPS and len(losses) == STEPS, names
    assert all(math.isfinite(value) for value in losses), (names, losses)
    assert trainer.faults.skipped == 0, (names, trainer.faults.skipped)


class DefaultFiller:
    """A plugin that fills the field slot only while it is at its default."""

    def __init__(self, field: str) -> None:
        self.field = field

    @hookimpl
    def atlas_register_fields(self, register) -> None:  # noqa: ANN001
        register(self.field, TinyField)

    @hookimpl
    def atlas_configure(self, config) -> None:  # noqa: ANN001
        if config.field.name == RunConfig().field.name:
            config.field.name = self.field


FIRST, SECOND = DefaultFiller("first_field"), DefaultFiller("second_field")


def test_default_only_claims_of_two_plugins_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    # each plugin sees the slot as the user left it, so the second claim is not lost
    eps = {n: EntryPoint(n, f"{__name__}:{n.upper()}", "atlas") for n in ("first", "second")}
    monkeypatch.setattr(plugins, "installed", lambda: eps)
    with pytest.raises(PluginError, match="'first' and 'second' both choose the field"):
        configure(RunConfig(), plugins.load(["first", "second"]))
    chosen = RunConfig()
    chosen.set("field", "second_field")  # the user's choice settles it
    configure(chosen, plugins.load(["first", "second"]))
    assert chosen.field.name == "second_field"


def test_enumeration_covers_every_installed_plugin() -> None:
    count = len(INSTALLED)
    assert len(PAIRS) == count * (count - 1) // 2
    if count >= 2:
        assert {name for pair in PAIRS for name in pair} == set(INSTALLED)


@pytest.mark.usefixtures("shrunk_builds")
@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(pair) for pair in PAIRS])
def test_pair_trains_or_clashes_at_start_up(
    pair: tuple[str, str],
    scene_of: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    scene = scene_of(pair)
    outcome = attempt(pair, scene, tmp_path / "run", {})
    if isinstance(outcome, Trainer):
        dropped = dropped_claims(pair, outcome.config)
        assert not dropped, f"{SILENT_DROP}: {'; '.join(dropped)}"
        train(outcome)
        return
    message = str(outcome)
    first, second = pair
    assert f"'{first}'" in message and f"'{second}'" in message, message
    assert any(word in message for word in CLASH_WORDS), message
    # the same pair through the CLI: one line on stderr, exit code 2, no run folder
    out = tmp_path / "cli"
    args = ["run", "--data", str(scene), "--out", str(out), "--plugins", ",".join(pair)]
    args += ["--data-kind", pair_data_kind(pair)]
    for key, value in QUICK.items():
        args += ["--set", f"{key}={value}"]
    capsys.readouterr()
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("atlas: warning:")]
    assert len(err) == 1 and err[0].startswith("atlas: error: plugin"), err
    assert f"'{first}'" in err[0] and f"'{second}'" in err[0], err
    assert not (out / "checkpoints").exists()


@pytest.mark.usefixtures("shrunk_builds")
@pytest.mark.parametrize(
    ("pair", "settings"), REQUIRED, ids=["+".join(pair) for pair, _ in REQUIRED]
)
def test_required_pair_trains(
    pair: tuple[str, str], settings: dict[str, Any], scene_of: Callable[..., Path], tmp_path: Path
) -> None:
    missing = [name for name in pair if name not in INSTALLED]
    if missing:
        pytest.skip(f"plugin {', '.join(missing)} is not installed")
    outcome = attempt(pair, scene_of(pair), tmp_path / "run", settings)
    assert isinstance(outcome, Trainer), f"{'+'.join(pair)} {settings}: {outcome}"
    for slot, name in settings.items():
        assert getattr(outcome.config, slot).name == name
    train(outcome)
