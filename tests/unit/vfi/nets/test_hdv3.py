"""RIFE HDv3, the peer: the published weights load strictly into our network, it finds
the middle of a known motion, and it refuses any t but 0.5 (it has no time input)."""

from __future__ import annotations

import pytest
import torch
from support.cels import frames

from vfi.inference.interpolator import interpolate
from vfi.inference.methods import (
    METHODS,
    PEERS,
    MethodError,
    MethodOptions,
    make_method,
)
from vfi.inference.metrics import psnr
from vfi.nets import linear_blend
from vfi.nets.hdv3 import TRAINING_ONLY, Hdv3, pretrained_state


@pytest.fixture(scope="module")
def hdv3() -> Hdv3:
    torch.set_num_threads(1)
    return Hdv3().eval()


def score(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(psnr(a[None], b[None])[0])


def test_published_weights_load_strictly(hdv3: Hdv3) -> None:
    state = pretrained_state()
    assert state and not any(k.startswith(("module.", *TRAINING_ONLY)) for k in state)
    ours = hdv3.state_dict()
    assert set(ours) == set(state)
    assert all(torch.equal(ours[k], state[k]) for k in state)


def test_the_middle_of_a_known_motion(hdv3: Hdv3) -> None:
    """A disc moving 16 px: the prediction is the truth at 0.5, far better than the
    cross-fade, and nearer it than to either end."""
    f0, g, f2 = frames(16.0, (0.0, 0.5, 1.0))
    pred = interpolate(hdv3, f0, f2, 0.5)
    blend = linear_blend(f0[None], f2[None], torch.tensor([0.5]))[0]
    assert score(pred, g) > 30
    assert score(pred, g) > score(blend, g) + 5
    assert score(pred, g) > max(score(pred, f0), score(pred, f2)) + 5


@pytest.mark.parametrize("size", [(48, 64), (70, 90)])
def test_any_size_and_a_still_pair(hdv3: Hdv3, size: tuple[int, int]) -> None:
    f0 = frames(0.0, (0.0,), *size)[0]
    out = interpolate(hdv3, f0, f0, 0.5)
    assert out.shape == f0.shape
    assert float((out - f0).abs().mean()) < 0.01


def test_middle_only() -> None:
    """A peer of the benchmark (t = 0.5 everywhere), not of evaluate (every true t)."""
    assert "hdv3" in PEERS and "hdv3" not in METHODS
    method = make_method("hdv3", MethodOptions())
    f0, f2 = frames(8.0, (0.0, 1.0), 64, 64)
    assert method(f0, f2, torch.tensor(0.5)).shape == f0.shape
    # a container's rounded timestamps (1 ms) move a middle frame a little: still 0.5
    assert torch.equal(method(f0, f2, torch.tensor(0.49)), method(f0, f2, torch.tensor(0.5)))
    with pytest.raises(MethodError, match="t = 0.5.*t = 0.250"):
        method(f0, f2, torch.tensor(0.25))
    with pytest.raises(ValueError, match="t = 0.5"):  # the network itself: exactly 0.5
        interpolate(Hdv3().eval(), f0, f2, 0.49)
