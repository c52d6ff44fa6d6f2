"""Mip-NeRF 360's distortion loss: the linear-time form against the paper's double sum."""

from __future__ import annotations

import json

import pytest
import torch

from atlas_core.cli import main
from atlas_core.errors import ConfigError
from atlas_core.nerf.contraction import LINEAR_REACH
from atlas_core.nerf.distortion import (
    INTERVALS,
    RAY_INDICES,
    DistortionLoss,
    distortion,
    normalized_intervals,
)
from atlas_core.nerf.rays import RayBundle


def brute_force(weights: list[float], edges: list[float]) -> float:
    """Barron et al. 2022, eq. 15, term by term in float64, for one ray."""
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    inter = sum(wi * wj * abs(mi - mj) for wi, mi in zip(weights, mids, strict=True)
                for wj, mj in zip(weights, mids, strict=True))  # fmt: skip
    intra = sum(w * w * (b - a) for w, a, b in zip(weights, edges[:-1], edges[1:], strict=True))
    return inter + intra / 3


def test_matches_the_double_sum_on_ragged_rays() -> None:
    """Rays of 0, 1, 5 and 9 samples, random weights and (sorted) intervals."""
    generator = torch.Generator().manual_seed(0)
    counts = [5, 0, 1, 9]
    weights, intervals, indices, expected = [], [], [], []
    for ray, count in enumerate(counts):
        edges = torch.rand(count + 1, generator=generator, dtype=torch.float64).sort().values
        w = torch.rand(count, generator=generator, dtype=torch.float64) / max(count, 1)
        weights.append(w)
        intervals.append(torch.stack([edges[:-1], edges[1:]], -1))
        indices += [ray] * count
        expected.append(brute_force(w.tolist(), edges.tolist()))
    got = distortion(torch.cat(weights), torch.cat(intervals), torch.tensor(indices), len(counts))
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert float(got[1]) == 0.0  # an empty ray


def test_compact_weights_cost_less_than_spread_ones() -> None:
    """The same total weight in one interval vs spread over the ray (the floater case)."""
    edges = torch.linspace(0, 1, 11)
    intervals = torch.stack([edges[:-1], edges[1:]], -1)
    rays = torch.zeros(10, dtype=torch.long)
    compact = torch.zeros(10)
    compact[4] = 1.0
    spread = torch.full((10,), 0.1)
    assert float(distortion(compact, intervals, rays, 1)) < float(
        distortion(spread, intervals, rays, 1)
    )


def bundle(contracted: bool) -> RayBundle:
    """Two rays, near 2 and far 6."""
    zeros = torch.zeros(2, 3)
    return RayBundle(zeros, zeros, torch.full((2, 1), 2.0), torch.full((2, 1), 6.0),
                     torch.zeros(2, 1), torch.zeros(2, dtype=torch.long),
                     contracted=contracted)  # fmt: skip


def test_intervals_are_normalised_per_space() -> None:
    """Box rays: (t - near) / (far - near); contracted rays: s / 2T, reaching 1 at infinity."""
    intervals = torch.tensor([[2.0, 4.0], [5.0, 6.0]])
    rays = torch.tensor([0, 1])
    box = normalized_intervals(bundle(False), intervals, rays)
    assert torch.allclose(box, torch.tensor([[0.0, 0.5], [0.75, 1.0]]))
    far = torch.tensor([[1.0, 1e9], [0.0, LINEAR_REACH]])
    warped = normalized_intervals(bundle(True), far, rays)
    assert torch.allclose(warped, torch.tensor([[0.25, 1.0], [0.0, 0.5]]), atol=1e-6)


def test_a_renderer_without_intervals_is_named() -> None:
    """A renderer that gives no per-sample intervals: a one-line ConfigError."""
    loss = DistortionLoss()
    with pytest.raises(ConfigError, match="distortion"):
        loss(bundle(False), {"rgb": torch.zeros(2, 3)}, {})
    outputs = {"weights": torch.tensor([0.5, 0.5]), INTERVALS: torch.tensor([[2.0, 3.0]] * 2),
               RAY_INDICES: torch.tensor([0, 1])}  # fmt: skip
    assert float(loss(bundle(False), outputs, {})) > 0


def test_the_option_trains_with_the_term(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    """``--set losses.distortion=0.01`` adds the term: it is logged, and it is positive."""
    out = tmp_path / "run"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]
    assert main([*args, "--set", "losses.distortion=0.01", "--set", "train.log_every=10"]) == 0
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    terms = [line["distortion"] for line in lines if "distortion" in line]
    assert len(terms) == 3 and all(value > 0 for value in terms)
    assert all(line["loss"] > line["rgb_l2"] for line in lines if "distortion" in line)


def test_unbounded_scenes_get_the_term_by_default(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    """Contracted space adds losses.distortion=0.01; the box does not; a named weight stays."""
    from atlas_core.config import load_toml

    def losses(name: str, *sets: str) -> dict[str, float]:
        out = tmp_path / name
        args = ["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]
        assert main([*args, "--max-steps", "2", *sets]) == 0
        return load_toml(out / "config.toml").losses

    assert losses("contract", "--set", "data.contract=true")["distortion"] == 0.01
    assert "distortion" not in losses("box")
    named = losses("named", "--set", "data.contract=true", "--set", "losses.distortion=0")
    assert named["distortion"] == 0.0
