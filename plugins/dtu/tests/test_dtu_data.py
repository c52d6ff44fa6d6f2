"""The dtu data kind against the generator's known cameras, masks and splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from atlas_plugin_dtu.data import load_dtu
from atlas_plugin_dtu.synth import SCALE, make_cameras, scale_matrix, write_scene

from atlas_core.api import INTRINSICS, DataError, image_rays, load_blender, make_rays, synth

SIZE = (40, 32)


def all_views(scan: Path, **options: object) -> tuple:
    """The scan loaded without a test split: its train Views and the scene."""
    scene = load_dtu(scan, test_every=0, **options)
    return scene.split("train"), scene


def test_loader_recovers_the_known_cameras(dtu_scan: Path) -> None:
    views, _ = all_views(dtu_scan)
    known = make_cameras(12, SIZE)
    assert views.images.shape == (12, 32, 40, 4) and len(views.extras[INTRINSICS]) == 12
    for c2w, intrinsics, camera in zip(views.c2w, views.extras[INTRINSICS], known, strict=True):
        c2w = c2w.double().numpy()
        assert np.allclose(c2w[:3, 3], camera.centre, atol=1e-5)
        # the core's axes: right = R's first row, up = -(down), back = -(forward)
        expected = np.stack([camera.R[0], -camera.R[1], -camera.R[2]], axis=1)
        assert np.allclose(c2w[:3, :3], expected, atol=1e-5)
        k = camera.K
        want = [k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5]
        assert np.allclose(intrinsics.numpy(), want, rtol=1e-5)
    focal = np.mean([np.sqrt(c.K[0, 0] * c.K[1, 1]) for c in known])
    assert views.focal == pytest.approx(focal, rel=1e-5)


def test_ray_through_a_world_points_pixel_passes_through_it(dtu_scan: Path) -> None:
    views, scene = all_views(dtu_scan)
    cameras = np.load(dtu_scan / "cameras.npz")
    normalised = np.array([[0.3, -0.2, 0.1], [-0.5, 0.4, -0.3], [0.0, 0.0, 0.6]])
    world = normalised * SCALE + scale_matrix()[:3, 3]  # millimetre-like world frame
    for index in (0, 5, 11):
        projection = cameras[f"world_mat_{index}"][:3]
        for point_w, point_n in zip(world, normalised, strict=True):
            u, v, w = projection @ np.append(point_w, 1.0)
            idx = torch.tensor([index])
            rays = make_rays(views, idx, torch.tensor([v / w]), torch.tensor([u / w]), scene,
                             with_targets=False)  # fmt: skip
            to_point = torch.from_numpy(point_n).float() - rays.origins[0]
            along = torch.dot(rays.directions[0], to_point)
            assert along > 0
            assert torch.linalg.cross(rays.directions[0], to_point).norm() / along < 1e-4


def test_scene_is_normalised_into_the_unit_box(dtu_scan: Path) -> None:
    scene = load_dtu(dtu_scan)
    assert scene.bounds == (-1.1, -1.1, -1.1, 1.1, 1.1, 1.1)
    distances = scene.split("train").c2w[:, :3, 3].norm(dim=1)
    assert torch.allclose(distances, torch.full_like(distances, 2.6), atol=1e-4)
    assert scene.near == pytest.approx(2.6 - 1.1 * 3**0.5, abs=1e-4)
    assert scene.far == pytest.approx(2.6 + 1.1 * 3**0.5, abs=1e-4)
    fixed = load_dtu(dtu_scan, near=0.5, far=9.0, bound=1.5)
    assert (fixed.near, fixed.far, fixed.bounds[3]) == (0.5, 9.0, 1.5)


def test_masks_become_alpha(dtu_scan: Path) -> None:
    views, scene = all_views(dtu_scan)
    mask = iio.imread(dtu_scan / "mask" / "003.png")
    assert torch.equal(views.images[3, :, :, 3], torch.from_numpy(mask))
    assert 0 < int((views.images[..., 3] == 255).sum()) < views.images[..., 3].numel()
    rays = image_rays(views, 3, scene)
    assert torch.allclose(rays.rgba[:, 3], torch.from_numpy(mask).reshape(-1).float() / 255)
    off, _ = all_views(dtu_scan, use_mask=False)
    assert bool((off.images[..., 3] == 255).all())
    assert torch.equal(off.images[..., :3], views.images[..., :3])


def test_masks_are_optional_unless_asked_for(dtu_scan: Path, tmp_path: Path) -> None:
    scan = shutil.copytree(dtu_scan, tmp_path / "scan")
    shutil.rmtree(scan / "mask")
    views, _ = all_views(scan)
    assert bool((views.images[..., 3] == 255).all())
    with pytest.raises(DataError, match=r"mask: folder is missing \(data.use_mask=true"):
        load_dtu(scan, use_mask=True)


def test_every_kth_view_is_held_out_for_test(dtu_scan: Path) -> None:
    scene = load_dtu(dtu_scan)
    assert scene.split("test").names == ["000000", "000008"]
    assert len(scene.split("train")) == 10 and "000001" in scene.split("train").names
    fourth = load_dtu(dtu_scan, test_every=4)
    assert fourth.split("test").names == ["000000", "000004", "000008"]
    assert torch.equal(fourth.split("test").c2w[1], load_dtu(dtu_scan, test_every=0)
                       .split("train").c2w[4])  # fmt: skip
    assert set(load_dtu(dtu_scan, test_every=0).splits) == {"train"}
    with pytest.raises(ValueError, match="test_every must be 0"):
        load_dtu(dtu_scan, test_every=1)


def test_downscale_scales_the_intrinsics(dtu_scan: Path) -> None:
    full, _ = all_views(dtu_scan)
    half, _ = all_views(dtu_scan, downscale=2)
    assert half.images.shape == (12, 16, 20, 4)
    assert torch.allclose(half.extras[INTRINSICS], full.extras[INTRINSICS] / 2)


def test_other_camera_file_and_3x4_world_matrices(dtu_scan: Path, tmp_path: Path) -> None:
    scan = shutil.copytree(dtu_scan, tmp_path / "scan")
    arrays = dict(np.load(scan / "cameras.npz"))
    arrays = {k: (v[:3] if k.startswith("world_mat") else v) for k, v in arrays.items()}
    np.savez(scan / "cameras_sphere.npz", **arrays)  # NeuS names its file so
    (scan / "cameras.npz").unlink()
    views, _ = all_views(scan, cameras="cameras_sphere.npz")
    assert torch.allclose(views.c2w, all_views(dtu_scan)[0].c2w)


def test_generator_shares_a_folder_but_never_overwrites(tmp_path: Path) -> None:
    blender = synth.write_scene(tmp_path / "both", size=8, views={"train": 2, "test": 1})
    write_scene(blender, views=3, size=(12, 10))
    assert len(load_dtu(blender, test_every=0).split("train")) == 3
    assert len(load_blender(blender).split("train")) == 2  # one folder, both data kinds
    with pytest.raises(FileExistsError, match="already holds image, mask, cameras.npz"):
        write_scene(blender)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        write_scene(tmp_path / "file")
