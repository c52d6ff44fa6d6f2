"""The appearance wrapper: identity at the start, per-image codes while training, the
held-out correction in evaluation, its options, and what it learns on gained photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from appearance_helpers import trainer, training_psnr
from atlas_plugin_appearance import AppearanceField, training_views
from atlas_plugin_appearance.field import wrap

from atlas_core.api import (
    ConfigError,
    Field,
    PluginError,
    RayBundle,
    RaySamples,
    has_density,
    parameter_tags,
)
from atlas_core.testing import run_cli


class Colours(Field):
    """A field whose colour and density depend on the sample position only."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 4)

    def forward(self, samples: RaySamples) -> dict[str, torch.Tensor]:
        out = self.layer(samples.positions)
        return {"density": out[:, :1].exp(), "rgb": out[:, 1:].sigmoid()}


def samples(cameras: list[int], per_ray: int = 3) -> RaySamples:
    """``per_ray`` samples on each of rays from the given camera indices."""
    count = len(cameras)
    generator = torch.Generator().manual_seed(1)
    origins = torch.randn(count, 3, generator=generator)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    ones = torch.ones(count, 1)
    rays = RayBundle(origins, directions, ones, ones * 3, ones * 1e-3, torch.tensor(cameras))
    starts = torch.linspace(1, 2, per_ray).repeat(count)[:, None]
    return RaySamples(rays, starts, starts + 0.1, torch.arange(count).repeat_interleave(per_ray))


def wrapped(capacity: int = 8, eval_mode: str = "mean", **options: object) -> AppearanceField:
    """A wrapper around ``Colours`` whose corrections are not the identity."""
    torch.manual_seed(0)
    field = wrap(Colours(), dim=4, hidden=8, capacity=capacity, eval_mode=eval_mode, **options)
    with torch.no_grad():
        for param in field.head.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return field


def test_identity_at_initialisation() -> None:
    inner = Colours()
    field = wrap(inner, dim=16, hidden=32, capacity=8, eval_mode="mean")
    batch = samples([0, 3, 5])
    assert torch.allclose(field(batch)["rgb"], inner(batch)["rgb"])
    assert not has_density(field)


def test_training_rays_use_their_images_code() -> None:
    field = wrapped()
    one, other = field(samples([1, 1]))["rgb"], field(samples([1, 2]))["rgb"]
    assert torch.allclose(one[:3], other[:3])  # ray 0 of image 1 in both batches
    assert not torch.allclose(one[3:], other[3:])  # ray 1: image 1 vs image 2
    matrix, bias = field.transforms(field.codes[2:3])
    plain = field.inner(samples([1, 2]))["rgb"][3:]
    assert torch.allclose(other[3:], plain @ matrix[0].T + bias[0], atol=1e-6)


def test_held_out_views_get_the_mean_code_whatever_their_index() -> None:
    field = wrapped(capacity=4).eval()
    field.set_num_images(2)
    batch = samples([0, 9, 2])  # test-split indices, one beyond the table
    matrix, bias = field.transforms(field.codes[:2].mean(0, keepdim=True))
    plain = field.inner(batch)["rgb"]
    assert torch.allclose(field(batch)["rgb"], plain @ matrix[0].T + bias[0], atol=1e-6)
    field.train()
    with pytest.raises(PluginError, match="appearance.max_images=4"):
        field(batch)


def test_eval_identity_leaves_colours_alone() -> None:
    mean, identity = wrapped(eval_mode="mean").eval(), wrapped(eval_mode="identity").eval()
    batch = samples([0, 1])
    plain = identity.inner(batch)["rgb"]
    assert torch.equal(identity(batch)["rgb"], plain)
    assert not torch.allclose(mean(batch)["rgb"], plain)


def test_training_views_context_renders_with_each_images_code() -> None:
    field = wrapped().eval()
    batch = samples([1, 2])
    held_out = field(batch)["rgb"]
    with training_views(field):
        own = field(batch)["rgb"]
    assert torch.allclose(own, field.train()(batch)["rgb"])
    assert not torch.allclose(own, held_out)
    assert torch.allclose(field.eval()(batch)["rgb"], held_out)


def test_dim_hidden_max_images_and_lr_scale_options(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    fitted = trainer(atlas_scene, tmp_path / "r", ("appearance",), 1, appearance__dim=5,
                     appearance__hidden=0, appearance__max_images=20,
                     appearance__lr_scale=3.0)  # fmt: skip
    field = fitted.pipeline.field
    assert isinstance(field, AppearanceField)
    assert field.codes.shape == (20, 5)
    assert isinstance(field.head, torch.nn.Linear) and field.head.in_features == 5
    assert parameter_tags(field.codes).lr_scale == 3.0
    fitted.fit()
    assert int(field.num_images) == 12  # set when training starts
    hidden = trainer(atlas_scene, tmp_path / "h", ("appearance",), 1, appearance__hidden=7)
    assert hidden.pipeline.field.head[0].out_features == 7


def test_too_few_codes_for_the_training_images(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    fitted = trainer(atlas_scene, tmp_path / "r", ("appearance",), 1, appearance__max_images=5)
    with pytest.raises(ConfigError, match="12 training images but appearance.max_images=5"):
        fitted.fit()


def test_l2_adds_its_loss_term_and_shrinks_the_codes(atlas_scene, tmp_path) -> None:  # noqa: ANN001
    norms = {}
    for weight in (0.0, 10.0):
        fitted = trainer(atlas_scene, tmp_path / str(weight), ("appearance",), 30,
                         appearance__l2=weight)  # fmt: skip
        assert ("appearance_l2" in fitted.config.losses) == (weight > 0)
        fitted.fit()
        assert ("appearance_l2" in fitted.history[-1]) == (weight > 0)
        norms[weight] = float(fitted.pipeline.field.codes[:12].detach().norm(dim=-1).mean())
    assert norms[10.0] < 0.7 * norms[0.0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("appearance.eval=median", "value 'median' for appearance.eval"),
        ("appearance.dim=0", "appearance.dim must be >= 1"),
        ("appearance.l2=-1.0", "appearance.l2 must be >= 0"),
        ("appearance.lr_scale=0.0", "appearance.lr_scale must be > 0"),
        ("appearance.size=3", "option 'appearance.size'"),
    ],
)
def test_bad_options_stop_at_start_up(atlas_scene, tmp_path, capsys, setting, message) -> None:  # noqa: ANN001
    args = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "r"), "--plugins",
            "appearance", "--max-steps", "1", "--set", setting]  # fmt: skip
    assert run_cli(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_learns_the_gains_of_the_training_photos(gained_scene, tmp_path) -> None:  # noqa: ANN001
    """Same steps and seed: the corrected run fits the gained photos clearly better, and
    each image's learned correction of grey follows its gain per channel."""
    settings = {"train__lr": 0.02, "train__lr_final": 0.002}
    plain = trainer(gained_scene, tmp_path / "plain", (), 400, **settings)
    plain.fit()
    corrected = trainer(gained_scene, tmp_path / "app", ("appearance",), 400, **settings)
    corrected.fit()
    assert training_psnr(corrected) > training_psnr(plain) + 1.0
    field = corrected.pipeline.field
    with torch.no_grad():
        matrix, bias = field.transforms(field.codes[:12])
        grey = (matrix @ torch.full((3, 1), 0.5)).squeeze(-1) + bias
    gains = np.load(gained_scene / "gains.npy")
    correlations = [np.corrcoef(grey[:, c].numpy(), gains[:, c])[0, 1] for c in range(3)]
    print(f"psnr {training_psnr(plain):.2f} -> {training_psnr(corrected):.2f}, r {correlations}")
    assert min(correlations) > 0.3, correlations


def test_clashes_with_per_step_views_of_many_scenes() -> None:
    from atlas_plugin_appearance import atlas_configure

    from atlas_core.api import RunConfig

    config = RunConfig()
    config.plugins = ["appearance", "pixelnerf"]
    with pytest.raises(PluginError, match="plugins 'appearance' and 'pixelnerf' clash"):
        atlas_configure(config)
