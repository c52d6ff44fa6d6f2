"""The dnerf data kind: blender layout plus frame times; rays carry their time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from atlas_plugin_dnerf.data import load_dnerf
from atlas_plugin_dnerf.synth import write_dynamic_scene

from atlas_core.api import DataError, image_rays, samples_from_bins

LEGO = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dnerf" / "lego"


def test_times_are_read_per_view(dynamic_scene: Path) -> None:
    scene = load_dnerf(dynamic_scene)
    train = scene.split("train")
    assert train.times is not None and train.times.shape == (12,)
    assert torch.allclose(train.times, torch.linspace(0, 1, 12))
    assert torch.allclose(scene.split("test").times, torch.tensor([0.0, 0.5, 1.0]))


def test_times_outside_unit_range_are_normalised(tmp_path: Path) -> None:
    root = write_dynamic_scene(tmp_path / "s", size=8, views={"train": 3, "test": 2},
                               time_scale=10.0)  # fmt: skip
    scene = load_dnerf(root)
    assert torch.allclose(scene.split("train").times, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(scene.split("test").times, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize(("value", "message"), [(None, "missing key 'time'"),
                                                 ("soon", "time must be a number")])  # fmt: skip
def test_bad_times_name_the_file(tmp_path: Path, value: object, message: str) -> None:
    root = write_dynamic_scene(tmp_path / "s", size=8, views={"train": 2})
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    if value is None:
        del meta["frames"][1]["time"]
    else:
        meta["frames"][1]["time"] = value
    path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=f"transforms_train.json: frame 1: {message}"):
        load_dnerf(root)


def test_rays_and_samples_carry_time(dynamic_scene: Path) -> None:
    scene = load_dnerf(dynamic_scene)
    rays = image_rays(scene.split("train"), 3, scene)
    assert rays.times is not None and torch.allclose(rays.times, torch.full((400, 1), 3 / 11))
    edges = torch.linspace(2, 6, 5).expand(len(rays), 5)
    assert torch.allclose(samples_from_bins(rays, edges).times, torch.full((1600, 1), 3 / 11))


@pytest.mark.skipif(not LEGO.is_dir(), reason="shared D-NeRF lego scene not present")
def test_shared_dnerf_lego_loads() -> None:
    scene = load_dnerf(LEGO, downscale=4)
    sizes = {name: len(views) for name, views in scene.splits.items()}
    assert sizes == {"train": 50, "val": 11, "test": 20}
    for views in scene.splits.values():
        assert views.times is not None and float(views.times.min()) == 0.0
        assert float(views.times.max()) == pytest.approx(1.0)


def test_generator_for_atlas_data_synth_uses_the_seed(tmp_path) -> None:  # noqa: ANN001
    import json

    from atlas_plugin_dnerf.synth import generate

    poses = []
    for seed in (0, 0, 5):
        out = generate(tmp_path / f"s{seed}-{len(poses)}", size=8, seed=seed)
        meta = json.loads((out / "transforms_train.json").read_text())
        poses.append([frame["transform_matrix"] for frame in meta["frames"]])
    assert poses[0] == poses[1] and poses[0] != poses[2]
