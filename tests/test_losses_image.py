"""Image losses on crops: FFT, SSIM and MS-SSIM (signs, reshaping, start-up checks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from atlas_core.cli import main
from atlas_core.errors import AtlasError
from atlas_core.nerf.crops import crop_pixels
from atlas_core.nerf.image_losses import FFTLoss, MSSSIMLoss, SSIMLoss, ms_ssim
from atlas_core.nerf.metrics import ssim
from atlas_core.nerf.rays import RayBundle


def crop_batch(count: int, height: int, width: int) -> RayBundle:
    """Rays carrying the crop layout of ``count`` crops of ``height`` x ``width``."""
    zeros = torch.zeros(count)
    *_, layout = crop_pixels(zeros.long(), zeros.long(), zeros.long(), height, width)
    size = len(layout)
    vec, one = torch.zeros(size, 3), torch.ones(size, 1)
    return RayBundle(
        vec, vec, one, one, one, torch.zeros(size, dtype=torch.long), extras={"crop": layout}
    )


def images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    smooth = torch.nn.functional.interpolate(
        torch.rand(count, 3, 6, 6), size=(size, size), mode="bilinear"
    )
    return smooth.permute(0, 2, 3, 1).reshape(-1, 3)


@pytest.mark.parametrize("loss_class", [FFTLoss, SSIMLoss, MSSSIMLoss])
def test_identical_crops_give_zero_and_different_crops_more(loss_class: type) -> None:
    rays, target = crop_batch(2, 24, 24), images(2, 24)
    loss = loss_class()
    same = loss(rays, {"rgb": target.clone(), "target_rgb": target}, {})
    noisy = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    worse = loss(rays, {"rgb": noisy, "target_rgb": target}, {})
    assert abs(float(same)) < 1e-5 and float(worse) > 0.01


def test_ssim_loss_is_one_minus_the_metric() -> None:
    rays, target = crop_batch(1, 16, 16), images(1, 16)
    prediction = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    value = SSIMLoss()(rays, {"rgb": prediction, "target_rgb": target}, {})
    metric = ssim(prediction.view(16, 16, 3), target.view(16, 16, 3))
    assert abs(float(value) - (1 - metric)) < 1e-5


def test_ms_ssim_uses_the_scales_a_crop_allows() -> None:
    torch.manual_seed(2)
    big, small = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 12, 12)
    noisy = (big + 0.3 * torch.randn_like(big)).clamp(0, 1)
    assert 0 < float(ms_ssim(noisy, big)) < 1
    assert torch.allclose(ms_ssim(big, big), torch.ones(()))
    # one scale on a crop too small to halve: plain SSIM
    from atlas_core.nerf.metrics import ssim_maps

    noisy_small = (small + 0.3 * torch.randn_like(small)).clamp(0, 1)
    expected = ssim_maps(noisy_small, small)[0].mean()
    assert torch.allclose(ms_ssim(noisy_small, small), expected)


def test_fft_loss_sees_structure_l2_misses() -> None:
    """A shifted copy has equal FFT magnitudes: the FFT loss is ~0 where L2 is not."""
    rays = crop_batch(1, 16, 16)
    target = images(1, 16).view(16, 16, 3)
    shifted = torch.roll(target, shifts=3, dims=1)
    value = FFTLoss()(
        rays, {"rgb": shifted.reshape(-1, 3), "target_rgb": target.reshape(-1, 3)}, {}
    )
    assert float(value) < 1e-5 and float((shifted - target).abs().mean()) > 0.01


def test_image_loss_on_scattered_rays_fails_clearly() -> None:
    rays = crop_batch(1, 8, 8)[torch.randperm(64)]
    with pytest.raises(AtlasError, match="train.batch=crops"):
        SSIMLoss()(rays, {"rgb": torch.rand(64, 3), "target_rgb": torch.rand(64, 3)}, {})


@pytest.mark.parametrize("loss", ["fft", "ssim", "ms_ssim"])
def test_image_loss_with_ray_batches_exits_2(
    loss: str,
    atlas_scene: Path,
    tmp_path: Path,
    quick_args: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    argv = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), *quick_args]
    code = main([*argv, "--set", f"losses.{loss}=0.1"])
    err = capsys.readouterr().err
    assert code == 2 and f"losses.{loss}" in err and "train.batch=crops" in err
    assert len(err.strip().splitlines()) == 1
