"""Run configuration: dataclasses, TOML load/save and ``--set key=value`` overrides.

Fixed sections (``train``, ``eval``, ``data.path``/``data.kind`` and the top level) are
validated against their dataclass fields. A component slot (``field``, ``encoding``,
``sampler``, ``renderer``) holds a registered name plus options, which are checked
against the component factory's keyword arguments once the plugins are loaded.
An enabled plugin's own options live in a section named after it (``--set
dnerf.deformation=planes`` once ``dnerf`` is in ``plugins``); the plugin checks them.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass
from dataclasses import field as option
from pathlib import Path
from typing import Any

import tomli_w

from atlas_core.errors import ConfigError
from atlas_core.io import atomic_write_bytes
from atlas_core.registry import unknown_choice

__all__ = [
    "DataConfig",
    "EvalConfig",
    "RunConfig",
    "SECTIONS",
    "SLOTS",
    "Slot",
    "TrainConfig",
    "apply_overrides",
    "coerce_option",
    "known_keys",
    "load_toml",
    "parse_value",
    "save_toml",
]

SLOTS = {
    "field": "fields",
    "encoding": "encodings",
    "sampler": "samplers",
    "renderer": "renderers",
}


@dataclass
class Slot:
    """A component chosen by registered name, with keyword options for its factory."""

    name: str
    options: dict[str, Any] = option(default_factory=dict)


@dataclass
class DataConfig:
    """Where the scene is, its data kind and the data kind's options.

    ``kind = "auto"`` (or empty) picks the kind from the folder's files when the scene is
    loaded (``atlas_core.data.layout``); the run records the kind it chose. ``ndc`` and
    ``contract`` (``"auto"``, true, false) choose the ray space: NDC rays for
    forward-facing captures, Mip-NeRF 360 contraction for unbounded ones; ``auto`` lets
    the cameras decide (``atlas_core.data.scene_type``), true or false overrides.
    """

    path: str = ""
    kind: str = "auto"
    options: dict[str, Any] = option(default_factory=dict)
    ndc: typing.Literal["auto"] | bool = "auto"
    contract: typing.Literal["auto"] | bool = "auto"


@dataclass
class TrainConfig:
    """Optimisation settings."""

    max_steps: int = option(default=3000, metadata={"min": 1})
    time_budget: float = option(default=0.0, metadata={"min": 0})
    batch_rays: int = option(default=4096, metadata={"min": 1})
    target_samples: int = option(default=0, metadata={"min": 0})
    lr: float = option(default=5e-3, metadata={"min": 0})
    lr_final: float = option(default=5e-4, metadata={"min": 0})
    save_every: int = option(default=500, metadata={"min": 1})
    keep_checkpoints: int = option(default=3, metadata={"min": 1})
    log_every: int = option(default=25, metadata={"min": 1})
    eval_every: int = option(default=0, metadata={"min": 0})
    max_bad_steps: int = option(default=20, metadata={"min": 1})
    optimizer: typing.Literal["adam", "sgd", "adamw", "rmsprop", "uniform_adam"] = "adam"
    laplacian_weight: float = option(default=4.0, metadata={"min": 0})  # uniform_adam's lambda
    # the Adam family's second-moment decay and denominator floor
    beta2: float = option(default=0.999, metadata={"min": 0, "below": 1})
    eps: float = option(default=1e-8, metadata={"min": 0})
    schedule: typing.Literal["exponential", "cosine", "none"] = "exponential"
    grad_clip: float = option(default=0.0, metadata={"min": 0})  # max gradient norm, 0 = off
    train_only: list[str] = option(default_factory=list)  # parameter-name prefixes to train
    batch: typing.Literal["rays", "crops", "views"] = "rays"
    coarse_weight: float = option(default=1.0, metadata={"min": 0})  # coarse image's term
    crop_size: int = option(default=32, metadata={"min": 2})
    loss_space: typing.Literal["rgb", "hsv", "luminance", "xyz"] = "rgb"
    tone_map: bool = False  # x / (1 + x) before colour losses
    loss_gamma: float = option(default=1.0, metadata={"min": 0.01})  # x ** (1 / gamma)
    loss_linear: bool = False  # sRGB-encoded images decoded to linear light before the loss
    error_sampling: float = option(default=0.0, metadata={"min": 0})  # share drawn by error
    scales: int = option(default=1, metadata={"min": 1})  # 1, 1/2, ... resolutions (Mip-NeRF)
    pixel_jitter: bool = False  # each ray through a random point of its pixel, not its centre
    pixel_jitter_start: int = option(default=0, metadata={"min": 0})  # ... from this step on


@dataclass
class EvalConfig:
    """Evaluation and rendering settings."""

    views: int = option(default=25, metadata={"min": 0})
    chunk: int = option(default=4096, metadata={"min": 1})
    video_frames: int = option(default=48, metadata={"min": 0})
    fps: int = option(default=24, metadata={"min": 1})
    # s x s rays per test pixel; 0: 2 where the training images are antialiased, else 1
    supersample: int = option(default=1, metadata={"min": 0})


@dataclass
class RunConfig:
    """Everything needed to rerun a run."""

    name: str = ""
    seed: int = 0
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"
    logger: typing.Literal["none", "wandb"] = "none"
    plugins: list[str] = option(default_factory=list)
    data: DataConfig = option(default_factory=DataConfig)
    field: Slot = option(default_factory=lambda: Slot("tiny"))
    encoding: Slot = option(default_factory=lambda: Slot("positional"))
    sampler: Slot = option(default_factory=lambda: Slot("stratified"))
    renderer: Slot = option(default_factory=lambda: Slot("volume"))
    losses: dict[str, float] = option(default_factory=lambda: {"rgb_l2": 1.0})
    train: TrainConfig = option(default_factory=TrainConfig)
    eval: EvalConfig = option(default_factory=EvalConfig)
    versions: dict[str, str] = option(default_factory=dict)
    plugin_options: dict[str, dict[str, Any]] = option(default_factory=dict)
    explicit: builtins.set[str] = option(default_factory=set, compare=False)
    # slots filled by a plugin's ``prefer`` since no plugin claimed them; never saved
    preferred: dict[str, str] = option(default_factory=dict, compare=False)
    # slot -> the plugin that claimed it in ``configure``; never saved
    claimed: dict[str, str] = option(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict in the TOML layout (slot options inline with ``name``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "seed": self.seed,
            "device": self.device,
            "logger": self.logger,
            "plugins": list(self.plugins),
            "data": {
                "path": self.data.path,
                "kind": self.data.kind,
                "ndc": self.data.ndc,
                "contract": self.data.contract,
                **self.data.options,
            },
        }
        for slot in SLOTS:
            chosen: Slot = getattr(self, slot)
            out[slot] = {"name": chosen.name, **chosen.options}
        out["losses"] = dict(self.losses)
        out["train"] = dataclasses.asdict(self.train)
        out["eval"] = dataclasses.asdict(self.eval)
        out["versions"] = dict(self.versions)
        for plugin, options in self.plugin_options.items():
            out[plugin] = dict(options)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from the TOML layout; unknown keys and bad types raise ConfigError."""
        config, default = cls(), cls()
        recorded = bool(raw.get("versions"))  # a run's own config.toml: every value was used
        # plugins first: an enabled plugin's section is only valid once it is enabled
        for key, value in sorted(raw.items(), key=lambda item: item[0] != "plugins"):
            if isinstance(value, dict) and key not in ("losses", "versions"):
                for sub, subvalue in value.items():
                    # a file that picks a non-default component chose it explicitly
                    chosen = key in SLOTS and sub == "name"
                    explicit = chosen and subvalue != getattr(default, key).name
                    if key in ("train", "eval"):  # a non-default setting was chosen
                        explicit = recorded or subvalue != getattr(getattr(default, key), sub,
                                                                   subvalue)  # fmt: skip
                    config.set(f"{key}.{sub}", subvalue, source=source, explicit=explicit)
            else:
                config.set(key, value, source=source, explicit=False)
        data = raw.get("data")
        if raw.get("versions") and isinstance(data, dict):  # a run recorded before ray spaces
            for key in ("ndc", "contract"):  # ... rendered in the scene box
                if key not in data:
                    setattr(config.data, key, False)
        return config

    def set(self, key: str, value: Any, source: str = "--set", explicit: bool = True) -> None:
        """Set one dotted key; ``field=NAME`` chooses a component for a slot."""
        section, _, sub = key.partition(".")
        if section in SLOTS:
            slot: Slot = getattr(self, section)
            if sub in ("", "name"):
                slot.name = _coerce(key, value, str, source)
                if explicit:
                    self.explicit.add(section)
            else:
                slot.options[sub] = value
        elif section == "data" and sub and sub not in DATA_KEYS:
            self.data.options[sub] = value
        elif section == "losses" and sub:
            self.losses[sub] = _coerce(key, value, float, source)
        elif section == "losses" and isinstance(value, dict):
            self.losses = {k: _coerce(f"losses.{k}", v, float, source) for k, v in value.items()}
        elif section == "versions" and isinstance(value, dict):
            self.versions = {str(k): str(v) for k, v in value.items()}
        elif section in ("data", "train", "eval") and sub:
            _set_field(getattr(self, section), section, sub, value, source)
            if explicit:  # plugins leave a setting the user chose alone
                self.explicit.add(key)
        elif not sub and section != "plugin_options":
            _set_field(self, "", section, value, source)
        elif section in self.plugins and section not in SECTIONS:
            self.plugin_options.setdefault(section, {})[sub] = value
        else:
            raise ConfigError(_unknown_key(key, source, self))


SECTIONS = ("data", "losses", "versions", "train", "eval", *SLOTS)
DATA_KEYS = ("path", "kind", "ndc", "contract")  # DataConfig's own keys; the rest are options
UNSET_FIELDS = ("explicit", "preferred", "claimed")  # bookkeeping, not settings


def _unknown_key(key: str, source: str, config: RunConfig) -> str:
    keys = set(known_keys(config))
    return f"{source}: " + unknown_choice(f"config key '{key}'", key, keys)


def known_keys(config: RunConfig) -> list[str]:
    """Every fixed dotted key, for error messages."""
    keys = ["name", "seed", "device", "logger", "plugins", *(f"data.{k}" for k in DATA_KEYS)]
    keys += [f"{slot}.name" for slot in SLOTS]
    for section in ("train", "eval"):
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(getattr(config, section))]
    return keys


def _set_field(obj: Any, section: str, name: str, value: Any, source: str) -> None:
    key = f"{section}.{name}" if section else name
    fields = {f.name: f for f in dataclasses.fields(obj) if f.name not in UNSET_FIELDS}
    if name not in fields or isinstance(getattr(obj, name), (Slot, DataConfig)):
        raise ConfigError(_unknown_key(key, source, RunConfig()))
    hints = typing.get_type_hints(type(obj))
    coerced = _coerce(key, value, hints[name], source)
    low = fields[name].metadata.get("min")
    if low is not None and coerced < low:
        raise ConfigError(f"{source}: {key} must be >= {low}, got {coerced!r}")
    below = fields[name].metadata.get("below")
    if below is not None and coerced >= below:
        raise ConfigError(f"{source}: {key} must be below {below}, got {coerced!r}")
    setattr(obj, name, coerced)


def _coerce(key: str, value: Any, annotation: Any, source: str) -> Any:
    """Check ``value`` against a type annotation, converting int to float where valid."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is typing.Any:
        return value
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(
                f"{source}: " + unknown_choice(f"value {value!r} for {key}", str(value), choices)
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg, source)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: {key} expects {annotation}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} expects a list, got {value!r}")
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        items = [_coerce(key, v, item, source) for v in value]
        return origin(items)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 2**1023 else math.inf
    if annotation in (int, float, str, bool):
        if type(value) is not annotation:
            raise ConfigError(f"{source}: {key} expects {annotation.__name__}, got {value!r}")
        if annotation is float and not math.isfinite(value):
            raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}")
        return value
    return value


def coerce_option(key: str, value: Any, annotation: Any, source: str = "config") -> Any:
    """Public form of the type check used for component options."""
    return _coerce(key, value, annotation, source)


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML literal, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: RunConfig, pairs: list[str]) -> None:
    """Apply ``key=value`` strings from the command line."""
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected key=value, got {pair!r}")
        config.set(key.strip(), parse_value(text.strip()))


def load_toml(path: str | Path) -> RunConfig:
    """Read a run config from TOML; malformed files raise ConfigError naming the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return RunConfig.from_dict(raw, source=str(path))


def save_toml(config: RunConfig, path: str | Path) -> None:
    """Write the config as TOML (atomically)."""
    atomic_write_bytes(Path(path), tomli_w.dumps(config.to_dict()).encode())
