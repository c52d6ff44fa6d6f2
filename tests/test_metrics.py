"""PSNR and SSIM, SSIM checked against scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from atlas_core.nerf.metrics import psnr, ssim


def test_psnr_known_value() -> None:
    a = torch.zeros(4, 4, 3)
    assert math.isclose(psnr(a + 0.1, a), 20.0, rel_tol=1e-6)
    assert psnr(a, a) == float("inf")


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_scikit_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random((40, 36, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    expected = structural_similarity(
        x, y, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    got = ssim(torch.from_numpy(y).float(), torch.from_numpy(x).float())
    assert abs(got - expected) < 1e-4
    assert abs(ssim(torch.from_numpy(x), torch.from_numpy(x)) - 1.0) < 1e-9


def test_ssim_on_images_smaller_than_the_window() -> None:
    x = torch.rand(6, 5, 3)
    assert abs(ssim(x, x) - 1.0) < 1e-9
    assert ssim(x, 1 - x) < 0.5
