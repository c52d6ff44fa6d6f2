"""NDC rays (NeRF, Mildenhall et al. 2020, appendix C) against the paper's formulas in
float64: the projection, the near plane at t' = 0, infinity at t' = 1, straight lines."""

from __future__ import annotations

import torch

from atlas_core.nerf.ndc import NDCFrame, ndc_point, ndc_rays, ndc_t

FRAME = NDCFrame(focal=40.0, width=32, height=24, near=1.0)


def paper_projection(p: torch.Tensor, frame: NDCFrame) -> torch.Tensor:
    """Appendix C, eq. 23 with a_x = -f / (W/2), a_y = -f / (H/2), a_z, b_z for n=near, f=inf."""
    ax, ay = -frame.focal / (frame.width / 2), -frame.focal / (frame.height / 2)
    az, bz = 1.0, 2.0 * frame.near  # (f + n)/(f - n) -> 1, 2 f n/(f - n) -> 2n as f -> inf
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return torch.stack([ax * x / z, ay * y / z, az + bz / z], dim=-1)


def random_rays(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """World rays from near the reference camera into its frustum (float64)."""
    g = torch.Generator().manual_seed(seed)
    origins = (torch.rand(count, 3, generator=g, dtype=torch.float64) - 0.5) * 0.4
    pixels = torch.rand(count, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [FRAME.width, FRAME.height], dtype=torch.float64
    )
    dirs = torch.stack(
        [
            (pixels[:, 0] - FRAME.width / 2) / FRAME.focal,
            -(pixels[:, 1] - FRAME.height / 2) / FRAME.focal,
            -torch.ones(count, dtype=torch.float64),
        ],
        dim=-1,
    )
    return origins, dirs / dirs.norm(dim=-1, keepdim=True)


def test_projection_matches_the_paper_and_fills_the_cube() -> None:
    """Points in the reference frustum beyond the near plane land in [-1, 1]^3."""
    origins, dirs = random_rays(200)
    depth = torch.linspace(1.0, 500.0, 200, dtype=torch.float64)[:, None]
    points = torch.zeros_like(origins) + dirs / -dirs[:, 2:] * depth  # from the camera centre
    ndc = ndc_point(points, FRAME)
    assert torch.allclose(ndc, paper_projection(points, FRAME), atol=1e-12)
    assert bool((ndc.abs() <= 1.0 + 1e-12).all())


def test_ray_image_is_the_projected_ray_with_t_from_0_to_1() -> None:
    """o' + t' d' is the projection of o + t d; t' is 0 on the near plane and -> 1 far away."""
    origins, dirs = random_rays(100, seed=1)
    o_ndc, d_ndc = ndc_rays(origins, dirs, FRAME)
    # the origin moved onto the near plane maps to t' = 0 (z' = -1)
    assert torch.allclose(o_ndc[:, 2], torch.full((100,), -1.0, dtype=torch.float64))
    on_plane = origins + (-(FRAME.near + origins[:, 2]) / dirs[:, 2])[:, None] * dirs
    for t in (0.0, 0.5, 3.0, 40.0):
        world = on_plane + t * dirs
        t_ndc = ndc_t(on_plane, dirs, torch.full((100,), t, dtype=torch.float64), FRAME)
        expected = paper_projection(world, FRAME)
        assert torch.allclose(o_ndc + t_ndc[:, None] * d_ndc, expected, atol=1e-10)
        if t == 0.0:
            assert torch.allclose(t_ndc, torch.zeros_like(t_ndc))
    far = ndc_t(on_plane, dirs, torch.full((100,), 1e12, dtype=torch.float64), FRAME)
    assert torch.allclose(far, torch.ones_like(far), atol=1e-9)
    # at t' = 1 the ray reaches z' = 1 (infinity)
    assert torch.allclose((o_ndc + d_ndc)[:, 2], torch.ones(100, dtype=torch.float64))


def test_straight_lines_stay_straight() -> None:
    """Three collinear world points project to collinear NDC points."""
    origins, dirs = random_rays(50, seed=2)
    start = origins - 2.0 * torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    a, b, c = (paper_projection(start + s * dirs, FRAME) for s in (0.5, 2.0, 30.0))
    cross = torch.linalg.cross(b - a, c - a)
    assert float(cross.norm(dim=-1).max()) < 1e-10
    a2, b2, c2 = (ndc_point(start + s * dirs, FRAME) for s in (0.5, 2.0, 30.0))
    assert float(torch.linalg.cross(b2 - a2, c2 - a2).norm(dim=-1).max()) < 1e-10


def test_backward_rays_are_tilted_forward_not_inf() -> None:
    """A ray with d_z >= 0 never reaches the NDC volume; its NDC ray stays finite."""
    o, d = ndc_rays(torch.zeros(2, 3), torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), FRAME)
    assert bool(torch.isfinite(o).all() & torch.isfinite(d).all())
