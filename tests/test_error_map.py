"""Rays drawn in proportion to a running error per block of pixels (train.error_sampling)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from atlas_core.config import RunConfig
from atlas_core.engine.error_map import BLOCK, DECAY, ErrorMap, error_map_for
from atlas_core.errors import ConfigError
from atlas_core.testing.fixtures import quick_trainer


class Views(types.SimpleNamespace):
    """Stand-in training views: a count, a size and a device."""

    def __len__(self) -> int:
        return self.count


def make_views(count: int = 3, height: int = 20, width: int = 12) -> Views:
    """``count`` views of ``height`` x ``width`` pixels."""
    return Views(height=height, width=width, c2w=torch.zeros(count, 4, 4), count=count)


def test_draws_follow_the_error_inside_partial_edge_blocks() -> None:
    shown = make_views()
    errors = ErrorMap(3, 20, 12, share=1.0, device=torch.device("cpu"))
    errors.errors.zero_()
    last = errors.blocks[0] * errors.blocks[1] - 1  # view 0's bottom-right block: 4 x 4 px
    errors.errors[2 * errors.blocks[0] * errors.blocks[1] + last] = 1.0  # in view 2
    images, rows, cols = errors.draw(shown, 512)
    inside = (images == 2) & (rows >= 2 * BLOCK) & (cols >= BLOCK)
    assert inside.float().mean() > 0.97  # every other block keeps the small FLOOR chance
    assert rows.max() < 20 and cols.max() < 12  # the edge block is 4 x 4 px, not 8 x 8
    assert len(set(zip(rows[inside].tolist(), cols[inside].tolist(), strict=True))) > 8


def test_the_uniform_share_covers_every_view() -> None:
    errors = ErrorMap(3, 20, 12, share=0.25, device=torch.device("cpu"))
    errors.errors.zero_()
    errors.errors[0] = 1.0
    images, _, _ = errors.draw(make_views(), 4000)
    assert (images[:1000] == 0).float().mean() > 0.97 and set(images[1000:].tolist()) == {0, 1, 2}


def test_record_moves_drawn_blocks_towards_their_error() -> None:
    errors = ErrorMap(2, 16, 16, share=1.0, device=torch.device("cpu"))
    errors.drawn = (torch.tensor([1]), torch.tensor([9]), torch.tensor([3]))
    rgb = torch.tensor([[0.5, 0.5, 0.5]])
    errors.record({"rgb": rgb, "target_rgb": rgb + 0.1})
    cell = (1 * 2 + 1) * 2 + 0
    assert errors.errors[cell].item() == pytest.approx(DECAY + (1 - DECAY) * 0.01)
    assert (errors.errors[torch.arange(8) != cell] == 1.0).all() and errors.drawn is None


def test_views_of_another_size_are_drawn_uniformly() -> None:
    errors = ErrorMap(3, 20, 12, share=1.0, device=torch.device("cpu"))
    assert errors.draw(make_views(4), 10) is None and errors.draw(make_views(3, 8), 10) is None


def test_run_settings_are_checked() -> None:
    config = RunConfig()
    assert error_map_for(config, None, make_views()) is None  # off by default
    config.set("train.error_sampling", 0.5)
    assert isinstance(error_map_for(config, None, make_views()), ErrorMap)
    with pytest.raises(ConfigError, match="data-parallel"):
        error_map_for(config, object(), make_views())
    config.set("train.batch", "crops")
    with pytest.raises(ConfigError, match="train.batch=rays"):
        error_map_for(config, None, make_views())
    config.set("train.error_sampling", 1.5)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        error_map_for(config, None, make_views())


def test_training_draws_from_the_map_and_updates_it(atlas_scene: Path, tmp_path: Path) -> None:
    trainer = quick_trainer(atlas_scene, tmp_path, train__error_sampling=1.0)
    errors = trainer.error_map
    per_view = errors.blocks[0] * errors.blocks[1]
    errors.errors.zero_()
    errors.errors[5 * per_view : 6 * per_view] = 1.0  # only view 5 is wrong
    rays = trainer.sample_batch()
    assert (rays.camera_indices == 5).float().mean() > 0.95
    trainer.train_step()  # draws again from view 5, then records its errors
    assert errors.errors[5 * per_view : 6 * per_view].max() < 1.0  # all visited: 256 rays
    assert (errors.errors[: 5 * per_view] > 0).sum() < 10  # the FLOOR's few strays
