"""RQ decomposition and projection matrices: K, R, t recovered for random cameras."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from atlas_plugin_dtu.projection import Camera, camera_to_world, core_intrinsics, decompose, rq

from atlas_core.api import pixel_rays


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    return q if np.linalg.det(q) > 0 else -q


def random_camera(rng: np.random.Generator) -> Camera:
    """Random K (skewed, fx != fy, off-centre), rotation and translation."""
    k = np.array(
        [[rng.uniform(50, 3000), rng.uniform(-5, 5), rng.uniform(-100, 900)],
         [0.0, rng.uniform(50, 3000), rng.uniform(-100, 700)], [0.0, 0.0, 1.0]]
    )  # fmt: skip
    return Camera(k, random_rotation(rng), rng.normal(size=3) * 10)


def test_rq_factors_random_matrices() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        matrix = rng.normal(size=(3, 3))
        upper, ortho = rq(matrix)
        assert np.allclose(upper @ ortho, matrix)
        assert np.allclose(np.tril(upper, -1), 0.0)
        assert (np.diag(upper) >= 0).all()
        assert np.allclose(ortho @ ortho.T, np.eye(3))


@pytest.mark.parametrize("factor", [1.0, 2.5, -1.0, -0.003, 1e4])
def test_decompose_recovers_k_r_t_for_any_scale_and_sign(factor: float) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        camera = random_camera(rng)
        found = decompose(factor * camera.projection())
        assert np.allclose(found.K, camera.K, rtol=1e-9, atol=1e-7)
        assert np.allclose(found.R, camera.R, atol=1e-9)
        assert np.allclose(found.t, camera.t, atol=1e-7)
        assert np.isclose(np.linalg.det(found.R), 1.0)


def test_decompose_fixes_signs_of_an_equivalent_factorisation() -> None:
    # K with a negative focal and a reflected R give the same P: the result is canonical
    rng = np.random.default_rng(2)
    camera = random_camera(rng)
    flip = np.diag([1.0, -1.0, 1.0])
    odd = Camera(camera.K @ flip, flip @ camera.R, flip @ camera.t)
    assert np.allclose(odd.projection(), camera.projection())
    found = decompose(odd.projection())
    assert (np.diag(found.K) > 0).all() and np.isclose(np.linalg.det(found.R), 1.0)
    assert np.allclose(found.R, camera.R) and np.allclose(found.K, camera.K)


def test_singular_or_misshapen_projection_is_refused() -> None:
    p = np.zeros((3, 4))
    p[:, 3] = 1.0
    with pytest.raises(ValueError, match="not invertible"):
        decompose(p)
    with pytest.raises(ValueError, match="3x4"):
        decompose(np.eye(4))


def test_core_ray_through_projected_pixel_passes_through_the_point() -> None:
    rng = np.random.default_rng(3)
    camera = Camera(np.array([[60.0, 0, 21.3], [0, 55.0, 14.2], [0, 0, 1]]),
                    random_rotation(rng), np.array([0.1, -0.2, 4.0]))  # fmt: skip
    c2w = torch.from_numpy(camera_to_world(camera)).float()
    intrinsics = torch.from_numpy(core_intrinsics(camera)).float()
    for point in rng.normal(size=(5, 3)) * 0.5:
        u, v, w = camera.projection() @ np.append(point, 1.0)
        # an OpenCV pixel coordinate u is the core's pixel (col = u) shifted by its +0.5
        cols, rows = torch.tensor([u / w]), torch.tensor([v / w])
        origin, direction, radius = pixel_rays(c2w, cols, rows, 1.0, 40, 32, intrinsics[None])
        to_point = torch.from_numpy(point).float() - origin[0]
        along = torch.dot(direction[0], to_point)
        assert along > 0
        assert torch.linalg.cross(direction[0], to_point).norm() / along < 1e-5
        assert radius.shape == (1, 1)


def test_intrinsics_at_the_centre_match_the_focal_path() -> None:
    c2w = torch.eye(4)[None].expand(6, 4, 4)
    cols, rows = torch.arange(6), torch.tensor([0, 5, 9, 3, 1, 2])
    plain = pixel_rays(c2w, cols, rows, 30.0, 12, 10)
    intrinsics = torch.tensor([30.0, 30.0, 6.0, 5.0]).expand(6, 4)
    same = pixel_rays(c2w, cols, rows, 30.0, 12, 10, intrinsics)
    for a, b in zip(plain, same, strict=True):
        assert torch.allclose(a, b)
