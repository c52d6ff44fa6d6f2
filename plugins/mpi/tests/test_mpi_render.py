"""The MPI renders what its planes hold: texture placement, parallax, alpha-over, gradients."""

from __future__ import annotations

import torch
from helpers import FOCAL, SIZE, build, facing_scene, pose, render, set_planes


def opaque_plane(plane: int, texture: torch.Tensor, **options) -> tuple:  # noqa: ANN003
    """Field and sampler whose planes are clear except ``plane``, opaque with ``texture``
    (colour logits [3, SIZE, SIZE]); planes match the reference image texel for pixel."""
    scene = facing_scene()
    _, field, sampler = build(scene, planes=8, plane_width=SIZE, margin=1.0, **options)
    set_planes(field, -20.0, -30.0)
    with torch.no_grad():
        field.planes[0, :3, plane] = texture
        field.planes[0, 3, plane] = 30.0
    return scene, field, sampler


def test_plane_texture_lands_on_its_pixels() -> None:
    texture = torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2
    scene, field, sampler = opaque_plane(3, texture)
    out = render(field, sampler, pose(), scene)
    image = out["rgb"].view(SIZE, SIZE, 3)
    assert torch.allclose(image, torch.sigmoid(texture).permute(1, 2, 0), atol=1e-4)
    assert torch.allclose(out["acc"], torch.ones_like(out["acc"]), atol=1e-5)


def test_plane_at_its_depth_shows_parallax() -> None:
    plane, shift = 5, 3  # a camera moved sideways sees the plane shift by f * b / depth
    texture = torch.full((3, SIZE, SIZE), -10.0)
    texture[1, 7, 10] = 10.0  # one green texel at row 7, column 10
    scene, field, sampler = opaque_plane(plane, texture)
    depth = float(field.geometry.depths[plane])
    out = render(field, sampler, pose(x=shift * depth / FOCAL), scene)
    green = out["rgb"].detach().view(SIZE, SIZE, 3)[..., 1]
    row, col = divmod(int(green.argmax()), SIZE)
    assert (row, col) == (7, 10 - shift) and float(green.max()) > 0.99
    # the rendered depth lies in the layer that starts at the plane
    along_z = out["depth"].detach().view(-1) * -out["directions"][:, 2]
    next_depth = float(field.geometry.depths[plane + 1])
    assert depth - 1e-4 <= float(along_z[row * SIZE + col]) <= next_depth


def test_compositing_matches_alpha_over() -> None:
    scene = facing_scene()
    _, field, sampler = build(scene, planes=6, plane_width=4)
    generator = torch.Generator().manual_seed(2)
    colours, alphas = torch.rand(6, 3, generator=generator), torch.rand(6, generator=generator)
    with torch.no_grad():
        field.planes[0, :3] = torch.logit(colours).t()[:, :, None, None]
        field.planes[0, 3] = torch.logit(alphas)[:, None, None]
    out = render(field, sampler, pose(), scene, background="white")
    # Zhou et al. 2018, eq. 1: C = sum_i c_i a_i prod_{j<i} (1 - a_j), then over white
    expected, through = torch.zeros(3), 1.0
    for colour, alpha in zip(colours, alphas, strict=True):
        expected = expected + through * alpha * colour
        through = through * (1 - alpha)
    expected = expected + through * torch.ones(3)
    centre = (SIZE // 2) * SIZE + SIZE // 2
    assert torch.allclose(out["rgb"][centre], expected, atol=1e-5)
    assert torch.allclose(out["acc"][centre], torch.tensor([1 - through]), atol=1e-5)


def test_gradients_reach_planes_and_positions() -> None:
    scene = facing_scene()
    _, field, sampler = build(scene, planes=4, plane_width=8)
    out = render(field, sampler, pose(x=0.1), scene)
    out["rgb"].sum().backward()
    grad = field.planes.grad
    assert grad is not None and bool(torch.isfinite(grad).all())
    assert float(grad[0, :3].abs().sum()) > 0 and float(grad[0, 3].abs().sum()) > 0
    with torch.no_grad():  # planes that vary, so that moving a point changes its look-up
        field.planes.copy_(torch.randn(field.planes.shape, generator=torch.Generator()))
    points = torch.tensor([[0.1, -0.2, 0.5], [0.3, 0.1, -1.0]], requires_grad=True)
    rgb, alpha, _ = field.rgba(points)
    (rgb.sum() + alpha.sum()).backward()
    assert points.grad is not None and float(points.grad.abs().sum()) > 0  # deformations learn


def test_planes_are_spaced_in_inverse_depth() -> None:
    _, field, _ = build(facing_scene(), planes=5, near=2.0, far=8.0)
    disparities = 1.0 / field.geometry.depths
    assert torch.allclose(field.geometry.depths[[0, -1]], torch.tensor([2.0, 8.0]))
    assert torch.allclose(disparities.diff(), torch.full((4,), (1 / 8 - 1 / 2) / 4))
