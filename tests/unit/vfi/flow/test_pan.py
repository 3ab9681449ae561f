"""The global-pan candidate (:mod:`vfi.flow.pan`) against frames whose true motion is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfi.flow.dis import DisFlow, to_grey_u8
from vfi.flow.pan import choose, global_shift
from vfi.flow.project import match_error
from vfi.inference.metrics import psnr
from vfi.nets.warp import warp

H, W = 180, 240


def background(seed: int = 0, period: int = 16) -> np.ndarray:
    """A large canvas: smooth colour clouds under a regular grid of dots, the kind of
    painted background whose repeats mislead patch-based flow on a fast pan."""
    rng = np.random.default_rng(seed)
    big = (H + 120, W + 120)
    coarse = rng.random((big[0] // 24 + 2, big[1] // 24 + 2, 3)).astype(np.float32)
    clouds = torch.nn.functional.interpolate(
        torch.from_numpy(coarse).permute(2, 0, 1)[None], size=big, mode="bicubic",
        align_corners=False)[0].clamp(0, 1)
    ys, xs = np.mgrid[0:big[0], 0:big[1]]
    dots = ((ys % period - period / 2) ** 2 + (xs % period - period / 2) ** 2) < 12
    img = 0.35 + 0.3 * clouds
    img[:, torch.from_numpy(dots)] += 0.3
    return img.clamp(0, 1)


def view(canvas: torch.Tensor, x: int, y: int) -> torch.Tensor:
    """The H x W window of ``canvas`` at offset (x, y) from its centre: moving the
    window by -d moves the content by +d."""
    top, left = 60 - y, 60 - x
    return canvas[:, top:top + H, left:left + W].clone()


def square(img: torch.Tensor, x: int, y: int, size: int = 30) -> torch.Tensor:
    """A flat red square with its top-left corner at (x, y)."""
    img[:, y:y + size, x:x + size] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    return img


@pytest.mark.parametrize("shift", [(24, -10), (-6, 4), (0, 0), (30, 22)])
def test_global_shift_finds_the_pan(shift: tuple[int, int]) -> None:
    canvas = background()
    f0, f2 = view(canvas, 0, 0), view(canvas, *shift)
    assert global_shift(to_grey_u8(f0), to_grey_u8(f2)) == shift


def test_global_shift_tiny_frames_give_zero() -> None:
    tiny = torch.rand(3, 6, 6)
    assert global_shift(to_grey_u8(tiny), to_grey_u8(tiny.roll(1, -1))) == (0, 0)


def test_choose_takes_the_pan_on_the_background_and_keeps_the_object() -> None:
    canvas = background()
    f0 = square(view(canvas, 0, 0), 100, 70)
    f2 = square(view(canvas, 20, -8), 100, 110)        # background +20,-8; square 0,+40
    object_flow = torch.zeros(2, H, W)
    object_flow[1] = 40.0                              # right for the square only
    picked, error = choose(object_flow, (20, -8), f0, f2)
    assert torch.equal(picked[:, 20, 20], torch.tensor([20.0, -8.0]))
    assert torch.equal(picked[:, 85, 115], torch.tensor([0.0, 40.0]))
    assert torch.equal(error, match_error(picked, f0, f2))  # the chosen flow's own


def test_pan_candidate_fixes_dis_on_a_fast_pan_over_a_pattern() -> None:
    """Dots 32 px apart panned 24 px: DIS takes the wrong repeat; the pan candidate
    gives the exact middle frame (scored inside a margin: content entering at the
    borders exists in neither key frame)."""
    canvas = background(period=32)
    f0, f1, f2 = view(canvas, 0, 0), view(canvas, 12, -5), view(canvas, 24, -10)
    inner = (..., slice(30, -30), slice(30, -30))
    scores = {}
    for pan in (False, True):
        flows = DisFlow("medium", refine=pan)(f0, f2, 0.5)
        pred = 0.5 * warp(f0[None], flows[None, :2]) + 0.5 * warp(f2[None], flows[None, 2:])
        scores[pan] = float(psnr(pred.clamp(0, 1)[inner], f1[None][inner])[0])
    assert scores[False] < 30.0, scores  # the failure this module exists for
    assert scores[True] > 60.0, scores


def test_pair_is_independent_of_t() -> None:
    canvas = background()
    f0, f2 = view(canvas, 0, 0), view(canvas, 8, 4)
    flow = DisFlow("fast", refine=True)
    pair = flow.pair(f0, f2)
    for t in (0.25, 0.5, 0.8):
        assert torch.allclose(flow(f0, f2, t), flow.at(pair, t))
