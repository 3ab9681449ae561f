"""Flow to time t by splatting (:mod:`vfi.flow.project`) on a motion known exactly."""

from __future__ import annotations

import torch

from vfi.flow.project import flow_to_time, importance, splat

H, W = 40, 60


def moving_square(dx: float) -> torch.Tensor:
    """F02 of a 10x10 square at x 10..19, y 15..24 moving right by ``dx`` on a still
    background (flow zero everywhere else)."""
    flow = torch.zeros(2, H, W)
    flow[0, 15:25, 10:20] = dx
    return flow


def test_splat_moves_values_and_conserves_weight() -> None:
    values = torch.arange(H * W, dtype=torch.float32).view(1, H, W)
    motion = torch.zeros(2, H, W)
    motion[0] = 3.0  # whole-pixel shift right
    sums, weights = splat(values, motion)
    assert torch.equal(sums[0, :, 3:], values[0, :, :-3])
    assert torch.equal(weights[:, 3:], torch.ones(H, W - 3)) and weights[:, :3].sum() == 0


def test_splat_half_pixel_spreads_evenly() -> None:
    values = torch.zeros(1, H, W)
    values[0, 5, 5] = 1.0
    motion = torch.zeros(2, H, W)
    motion[0, 5, 5] = 0.5
    sums, _ = splat(values, motion)
    assert torch.allclose(sums[0, 5, 5:7], torch.tensor([0.5, 0.5]))


def square_frames(dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """f0, f2 of :func:`moving_square`: a red square over a horizontal grey ramp."""
    ramp = torch.linspace(0.1, 0.6, W).expand(3, H, W).clone()
    f0, f2 = ramp.clone(), ramp.clone()
    f0[:, 15:25, 10:20] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    f2[:, 15:25, 10 + dx:20 + dx] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    return f0, f2


def test_square_at_time_t_gets_its_own_motion() -> None:
    flow = moving_square(16.0)
    f0, f2 = square_frames(16)
    back = flow_to_time(flow, 0.5, importance(flow, f0, f2))
    plain = flow_to_time(flow, 0.5)
    # At t = 0.5 the square covers x 18..27. The simple estimate (-t F at p) has the
    # square's motion only at x 18..19; splatting carries it over the whole square.
    assert torch.allclose((-0.5 * flow)[0, 15:25, 20:28], torch.zeros(10, 8))
    assert (back[0, 15:25, 18:28] <= -4.0 + 1e-4).all()
    # Background at x 26..27 is covered in f2: it gives way to the square entirely;
    # unweighted it is averaged in.
    assert torch.allclose(back[0, 15:25, 26:28], torch.full((10, 2), -8.0), atol=1e-3)
    assert torch.allclose(plain[0, 15:25, 26:28], torch.full((10, 2), -4.0))
    # Background at x 20..25 is seen in both f0 and f2 (the square passes over it
    # between them): no photometric cue can rank the two layers, so they average.
    assert torch.allclose(back[0, 15:25, 20:26], torch.full((10, 6), -4.0), atol=1e-3)
    # Background no pixel arrives at keeps the simple estimate (zero here)...
    assert torch.equal(back[:, :10], torch.zeros(2, 10, W))
    # ...and so does the strip x 10..17 the square uncovers (a hole: nothing of f0 is
    # there at t; the simple estimate samples the background left of the square).
    assert torch.equal(back[:, 15:25, 10:18], (-0.5 * flow)[:, 15:25, 10:18])


def test_t_zero_and_uniform_motion_are_the_simple_estimate() -> None:
    flow = moving_square(16.0)
    assert torch.equal(flow_to_time(flow, 0.0), -0.0 * flow)
    uniform = torch.full((2, H, W), 4.0)
    inner = (..., slice(4, -4), slice(4, -4))
    assert torch.allclose(flow_to_time(uniform, 0.5)[inner], (-0.5 * uniform)[inner])
