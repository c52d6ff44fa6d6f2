"""The volsdf plugin through the core: registration, configuration, losses, runs, export."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from atlas_plugin_volsdf import EikonalLoss, FieldImportanceSampler, VolSDFField

from atlas_core.api import ConfigError, PluginError, RunConfig, hookimpl, read_ply
from atlas_core.testing import configure, load_plugins, load_toml, run_cli

QUICK = ["--eval-views", "1", "--set", "eval.video_frames=0", "--set", "train.batch_rays=128",
         "--set", "field.width=32", "--set", "field.features=16",
         "--set", "field.color_width=16", "--set", "encoding.frequencies=4"]  # fmt: skip
STRATIFIED = ["--set", "sampler.samples=16"]


def run(scene: Path, out: Path, steps: int, *extra: str, sampler: tuple = (*STRATIFIED,)) -> int:
    """A short CLI run with the volsdf plugin."""
    args = ["run", "--data", str(scene), "--out", str(out), "--plugins", "volsdf"]
    return run_cli([*args, "--max-steps", str(steps), *QUICK, *sampler, *extra])


def test_entry_point_registers_field_and_loss(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("volsdf",))
    assert loaded.registry.get("fields", "volsdf").factory is VolSDFField
    assert loaded.registry.get("losses", "eikonal").factory is EikonalLoss
    assert loaded.infos["volsdf"].distribution == "atlas-plugin-volsdf"
    assert loaded.registry.get("samplers", "importance").factory is FieldImportanceSampler
    components = {
        "fields": ["volsdf", "volsdf_grid", "volsdf_hash"],
        "losses": ["eikonal", "normal_smoothness", "photo_consistency"],
        "samplers": ["importance"],
    }
    assert loaded.infos["volsdf"].components == components
    assert "volsdf" not in load_plugins().infos  # installed is not enabled


def test_configure_picks_the_field_and_adds_eikonal(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(enable=("volsdf",))
    config = RunConfig()
    configure(config, loaded)
    assert config.field.name == "volsdf" and config.losses == {"rgb_l2": 1.0, "eikonal": 0.1}
    weighted = RunConfig()
    weighted.set("losses.eikonal", 0.02)
    configure(weighted, loaded)
    assert weighted.losses["eikonal"] == 0.02  # the user's weight wins
    chosen = RunConfig()
    chosen.set("field", "tiny")
    configure(chosen, loaded)
    assert chosen.field.name == "tiny" and "eikonal" not in chosen.losses


class OtherField:
    """An in-process plugin that also claims the field slot."""

    name = "otherfield"

    @staticmethod
    @hookimpl
    def atlas_configure(config: RunConfig) -> None:
        """Choose the plain field unless the user chose one."""
        if "field" not in config.explicit:
            config.field.name = "plain"


def test_a_second_field_claim_is_a_clash_naming_both(atlas_pm) -> None:  # noqa: ANN001
    loaded = atlas_pm(OtherField, enable=("volsdf",))
    with pytest.raises(PluginError, match="'otherfield' and 'volsdf'|'volsdf' and 'otherfield'"):
        configure(RunConfig(), loaded)
    chosen = RunConfig()
    chosen.set("field", "volsdf")
    configure(chosen, loaded)  # the user's choice settles it
    assert chosen.field.name == "volsdf" and "eikonal" in chosen.losses


class DoubledDistance(torch.nn.Module):
    """``sdf = 2 |x|``: its gradient has norm 2 everywhere, so the eikonal term is 1."""

    def sdf(self, positions: torch.Tensor) -> torch.Tensor:
        """Twice the distance to the origin."""
        return 2 * positions.norm(dim=-1, keepdim=True)


def test_eikonal_points_add_uniform_random_points(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    config = RunConfig()
    config.plugins = ["volsdf"]
    config.set("volsdf.eikonal_points", 500)
    scene = SimpleNamespace(bounds=(-1.5, -1.5, -1.5, 1.5, 1.5, 1.5))
    context = SimpleNamespace(config=config, scene=scene, field_module=DoubledDistance)
    loss = EikonalLoss(context)
    unit = {"sdf_gradients": torch.tensor([[0.0, 1.0, 0.0]])}  # one perfect sample
    assert loss(None, {}, unit).item() == pytest.approx(500 / 501)
    loss.eval()
    assert loss(None, {}, unit).item() == 0.0  # random points only while training
    context.field_module = torch.nn.Identity
    with pytest.raises(ConfigError, match="eikonal_points"):
        EikonalLoss(context)
    config.set("volsdf.eikonal_points", -1)
    with pytest.raises(ConfigError, match="eikonal_points"):
        EikonalLoss(context)
    assert run(atlas_scene, tmp_path / "ek", 2, "--set", "volsdf.eikonal_points=64") == 0
    assert run(atlas_scene, tmp_path / "ek2", 1, "--set", "volsdf.eikonal_points=-3") == 2


def test_beta_is_reported_with_the_step_metrics(atlas_pm, atlas_scene, tmp_path) -> None:  # noqa: ANN001
    from atlas_core.testing import Trainer

    config = RunConfig()
    config.data.path = str(atlas_scene)
    for key, value in {
        "train.max_steps": 2,
        "train.log_every": 1,
        "train.batch_rays": 32,
        "sampler.samples": 8,
        "field.width": 16,
        "field.beta_init": 0.2,
    }.items():
        config.set(key, value)  # fmt: skip
    trainer = Trainer(config, atlas_pm(enable=("volsdf",)), tmp_path / "run")
    trainer.fit()
    betas = [row["beta"] for row in trainer.history]
    assert len(betas) == 2 and all(0.15 < b < 0.25 for b in betas) and betas[0] != betas[1]


def test_eikonal_loss_value_and_missing_gradients() -> None:
    loss = EikonalLoss()
    gradients = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    value = loss(None, {}, {"sdf_gradients": gradients})
    assert value.item() == pytest.approx((16.0 + 0.0 + 0.25) / 3)
    with pytest.raises(ConfigError, match="eikonal"):
        loss(None, {}, {"density": torch.ones(3, 1)})


def test_cli_run_writes_normals_and_exports_a_mesh(atlas_scene, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "r"
    assert run(atlas_scene, out, 8, "--set", "field.radius=0.8") == 0
    assert sorted(p.name for p in (out / "test").glob("*_normals.png"))
    config = load_toml(out / "config.toml")
    assert config.field.name == "volsdf" and config.losses["eikonal"] == 0.1
    assert config.field.options["radius"] == 0.8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["plugins"]["volsdf"] == version("atlas-plugin-volsdf") and metrics["steps"] == 8
    capsys.readouterr()
    assert run_cli(["export", str(out), "mesh", "--resolution", "40"]) == 0
    printed = capsys.readouterr().out
    mesh = read_ply(out / "mesh.ply")
    assert f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces" in printed
    radii = torch.from_numpy(mesh.vertices).norm(dim=-1)
    assert 0.5 < float(radii.mean()) < 1.1  # still near the 0.8 sphere it started as


def test_bounding_sphere_and_eikonal_weight_options(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "bound"
    extra = ["--set", "field.bound_radius=2.5", "--set", "losses.eikonal=0.5",
             "--set", "field.beta_init=0.05", "--set", "field.skips=[1]"]  # fmt: skip
    assert run(atlas_scene, out, 4, *extra) == 0
    config = load_toml(out / "config.toml")
    assert config.losses["eikonal"] == 0.5 and config.field.options["bound_radius"] == 2.5
    bad = run(atlas_scene, tmp_path / "bad", 1, "--set", "field.bound_radius=0.5")
    assert bad == 2


@pytest.mark.parametrize(
    "sampler",
    [("--set", "sampler=hierarchical", "--set", "sampler.coarse=8", "--set", "sampler.fine=8"),
     ("--set", "sampler=occupancy", "--set", "sampler.resolution=16"),
     ("--set", "sampler=importance", "--set", "sampler.coarse=8", "--set", "sampler.fine=8")],
)  # fmt: skip
def test_core_samplers_work_with_the_sdf_density(atlas_scene, tmp_path, sampler) -> None:  # noqa: ANN001
    assert run(atlas_scene, tmp_path / "s", 4, sampler=sampler) == 0
