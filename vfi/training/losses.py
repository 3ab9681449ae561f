"""Training losses, outside the model (FILM's ``losses.py``): one signature
``(batch, prediction) -> scalar`` and a name -> function registry, so ``train.losses``
in params.yaml picks losses and weights without touching code.

``batch`` is a triplet batch (``f1`` is the ground truth), ``prediction`` the model's
output dict (``pred`` is the frame).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from vfi.nets.warp import warp

LossFn = Callable[[Mapping[str, Any], Mapping[str, torch.Tensor]], torch.Tensor]
CHARBONNIER_EPS = 1e-3
CENSUS_PATCH = 7
PYRAMID_SCALES = (2, 4, 8)


def charbonnier(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]
                ) -> torch.Tensor:
    """sqrt(d^2 + eps^2): L1 away from zero (robust to the few pixels a warp gets wrong,
    unlike L2 which blurs to hedge) yet smooth at zero."""
    diff = prediction["pred"] - batch["f1"].to(prediction["pred"])
    return torch.sqrt(diff * diff + CHARBONNIER_EPS ** 2).mean()


def grey(img: torch.Tensor) -> torch.Tensor:
    """Luma (BT.601) of B x 3 x H x W in [0, 1], kept 4-D."""
    r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def ternary(img: torch.Tensor, patch: int = CENSUS_PATCH) -> torch.Tensor:
    """Soft ternary census transform: each pixel vs its ``patch`` x ``patch`` neighbours,
    normalised so it depends on local structure, not on brightness (RIFE/IFRNet)."""
    g = grey(img) * 255.0
    kernel = torch.eye(patch * patch, device=img.device, dtype=img.dtype)
    kernel = kernel.reshape(patch * patch, 1, patch, patch)
    neighbours = F.conv2d(g, kernel, padding=patch // 2)
    d = neighbours - g
    return d / torch.sqrt(0.81 + d * d)


def census(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Ternary census distance: line art is thin, so a loss on local sign patterns keeps
    edges sharp where a per-pixel loss would accept a blur of the right mean."""
    pred = prediction["pred"]
    a, b = ternary(pred), ternary(batch["f1"].to(pred))
    d2 = (a - b) ** 2
    dist = (d2 / (0.1 + d2)).mean(1, keepdim=True)
    # Border pixels compare against zero padding: leave them out.
    m = CENSUS_PATCH // 2
    return dist[..., m:-m, m:-m].mean() if min(dist.shape[-2:]) > 2 * m else dist.mean()


def pyramid(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Charbonnier of the flow model's fusion redone on 1/2, 1/4 and 1/8 size frames.

    At full size a misplaced flat cartoon region gives the flow no gradient (a bilinear
    warp only sees a 1-pixel neighbourhood, and flat paint has no slope); on downsampled
    frames edges are wider and motions shorter, so the flow learns from the start.
    Needs ``flow`` and ``mask`` in the prediction (zero for models without them).
    """
    if "flow" not in prediction:
        return prediction["pred"].new_zeros(())
    flow, mask = prediction["flow"], prediction["mask"]
    gt = batch["f1"].to(flow)
    f0, f2 = batch["f0"].to(flow), batch["f2"].to(flow)
    total = flow.new_zeros(())
    for s in PYRAMID_SCALES:
        if min(flow.shape[-2:]) < 4 * s:
            break
        fl = F.avg_pool2d(flow, s) / s
        m = F.avg_pool2d(mask, s)
        pred = m * warp(F.avg_pool2d(f0, s), fl[:, :2]) + (1 - m) * warp(F.avg_pool2d(f2, s), fl[:, 2:])
        total = total + charbonnier({"f1": F.avg_pool2d(gt, s)}, {"pred": pred})
    return total / len(PYRAMID_SCALES)


def distill(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Robust distance (pixels) of the predicted flows to the teacher's (``batch["flow"]``,
    DIS flows scaled to t: :mod:`vfi.flow.dis`). Zero without a flow or a teacher."""
    if "flow" not in prediction or "flow" not in batch:
        return prediction["pred"].new_zeros(())
    d = prediction["flow"] - batch["flow"].to(prediction["flow"])
    return torch.sqrt(d * d + 1e-6).mean()


LOSSES: dict[str, LossFn] = {"charbonnier": charbonnier, "census": census,
                             "pyramid": pyramid, "distill": distill}


def total_loss(weights: Mapping[str, float], batch: Mapping[str, Any],
               prediction: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the named losses, and each term's value for logging."""
    unknown = set(weights) - set(LOSSES)
    if unknown:
        raise KeyError(f"unknown losses {sorted(unknown)}; known: {sorted(LOSSES)}")
    total = prediction["pred"].new_zeros(())
    parts: dict[str, float] = {}
    for name, weight in weights.items():
        if weight:
            value = LOSSES[name](batch, prediction)
            parts[name] = float(value.detach())
            total = total + weight * value
    return total, parts
