"""Test-time augmentation: each copy is mapped back before the mean, so a method that
already obeys the symmetries is unchanged and a biased one has its bias cancelled."""

from __future__ import annotations

import pytest
import torch
from support.cels import frames

from vfi.inference.methods import MethodError, MethodOptions, make_method
from vfi.inference.metrics import psnr
from vfi.inference.tta import TTA, averaged
from vfi.nets import linear_blend


def pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 8, 10, generator=g), torch.rand(2, 3, 8, 10, generator=g), \
        torch.tensor([0.25, 0.5])


@pytest.mark.parametrize("tta", list(TTA))
def test_a_symmetric_method_is_unchanged(tta: str) -> None:
    a, b, t = pair()
    out = averaged(linear_blend, a, b, t, tta)
    assert torch.allclose(out, linear_blend(a, b, t), atol=1e-6)


def test_reverse_cancels_a_bias_towards_the_first_frame() -> None:
    """Always answering the first frame: with its time-reversed copy, the mean of both
    ends, the t = 0.5 answer."""
    a, b, t = pair()
    first = lambda x, y, tt: x
    assert torch.equal(averaged(first, a, b, t, "none"), a)
    assert torch.allclose(averaged(first, a, b, t, "reverse"), (a + b) / 2)
    assert torch.allclose(averaged(first, a, b, t, "flip"), a)  # mirrored back: the same


def test_flip_cancels_a_sideways_bias() -> None:
    """A method that puts everything one pixel too far right: its mirrored copy is one
    pixel too far left once mirrored back, and the mean is the two shifts' mean."""
    a, b, t = pair()
    right = lambda x, y, tt: x.roll(1, -1)
    expected = (a.roll(1, -1) + a.roll(-1, -1)) / 2
    assert torch.allclose(averaged(right, a, b, t, "flip"), expected)
    both = averaged(right, a, b, t, "both")
    assert torch.allclose(both, (expected + (b.roll(1, -1) + b.roll(-1, -1)) / 2) / 2)


def test_the_option_reaches_the_model_and_a_bad_one_is_refused() -> None:
    f0, g, f2 = frames(16.0, (0.0, 0.5, 1.0), 64, 96)
    plain = make_method("rife", MethodOptions())(f0, f2, torch.tensor(0.5))
    both = make_method("rife", MethodOptions(tta="both"))(f0, f2, torch.tensor(0.5))
    assert not torch.equal(plain, both)  # four passes, averaged: other pixels
    assert float(psnr(both[None], g[None])[0]) > 25  # still the middle of the motion
    with pytest.raises(MethodError, match="--tta 'sideways'"):
        make_method("rife", MethodOptions(tta="sideways"))
