"""Training losses, outside the model (FILM's ``losses.py``): one signature
``(batch, prediction) -> scalar`` and a name -> function registry, so ``train.losses``
in params.yaml picks losses and weights without touching code.

``batch`` is a triplet batch (``f1`` is the ground truth), ``prediction`` the model's
output dict (``pred`` is the frame). A batch with ``valid`` (B x 1 x H x W: a crop
padded past a small source's frame, :func:`vfi.training.samples.padded`) is scored on
the picture alone.
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


def picture_mean(values: torch.Tensor, batch: Mapping[str, Any], margin: int = 0
                 ) -> torch.Tensor:
    """Mean of B x C x H x W ``values`` over the picture: the pixels ``batch["valid"]``
    marks (all without it), less ``margin`` pixels at the frame's and the picture's
    edges (where a neighbourhood measure reaches past them). The plain mean when no
    pixel is left."""
    valid, m = batch.get("valid"), margin
    if valid is None:  # the whole frame: slicing, not weighting (the same bits as ever)
        return values[..., m:-m, m:-m].mean() if m and min(values.shape[-2:]) > 2 * m \
            else values.mean()
    weight = valid.to(values)
    if margin:  # erode: a pixel stays when its whole (2m+1)^2 neighbourhood is picture
        weight = -F.max_pool2d(-F.pad(weight, (margin,) * 4), 2 * margin + 1, stride=1)
    total = weight.sum() * values.shape[1]
    if not float(total):
        return values.mean()
    return (values * weight).sum() / total


def charbonnier(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]
                ) -> torch.Tensor:
    """sqrt(d^2 + eps^2): L1 away from zero (robust to the few pixels a warp gets wrong,
    unlike L2 which blurs to hedge) yet smooth at zero."""
    diff = prediction["pred"] - batch["f1"].to(prediction["pred"])
    return picture_mean(torch.sqrt(diff * diff + CHARBONNIER_EPS ** 2), batch)


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
    # Pixels whose patch reaches the zero padding or a crop's padding: left out.
    return picture_mean(dist, batch, margin=CENSUS_PATCH // 2)


def edge(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Charbonnier of the difference of luma gradients (one-pixel steps across and down):
    a line drawn soft or twice has the wrong gradients where its mean may be right, and
    a flat paint offset costs nothing. Line art is where the gradients are."""
    pred = prediction["pred"]
    a, b = grey(pred), grey(batch["f1"].to(pred))
    steps = []
    for dim in (-1, -2):
        diff = a.diff(dim=dim) - b.diff(dim=dim)
        steps.append(F.pad(diff, (0, 1) if dim == -1 else (0, 0, 0, 1)))
    d = torch.cat(steps, 1)
    return picture_mean(torch.sqrt(d * d + CHARBONNIER_EPS ** 2), batch, margin=1)


PSNR_EPS = 1e-5  # mean squared error floor: a sample counts at most 50 dB


def psnr(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Minus the mean PSNR of the batch's samples, over 10 (log10 of each sample's mean
    squared error): the measure the model is judged by, averaged over triplets. Its
    pull on a sample grows as that sample's error shrinks, so easy pairs (little
    motion, clean paint) weigh as much per decibel as hard ones, where the per-pixel
    losses let the large errors of hard pairs dominate."""
    pred = prediction["pred"]
    d2 = (pred - batch["f1"].to(pred)) ** 2
    valid = batch.get("valid")
    weight = torch.ones_like(d2[:, :1]) if valid is None else valid.to(d2)
    mse = (d2 * weight).sum((1, 2, 3)) / (weight.sum((1, 2, 3)) * d2.shape[1]).clamp(min=1)
    return torch.log10(mse + PSNR_EPS).mean()


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
        small = {"f1": F.avg_pool2d(gt, s)}
        if "valid" in batch:  # the share of each coarse pixel that is picture
            small["valid"] = F.avg_pool2d(batch["valid"].to(flow), s)
        total = total + charbonnier(small, {"pred": pred})
    return total / len(PYRAMID_SCALES)


def distill(batch: Mapping[str, Any], prediction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Robust distance (pixels) of the predicted flows to the teacher's (``batch["flow"]``,
    DIS flows scaled to t: :mod:`vfi.flow.dis`). Zero without a flow or a teacher."""
    if "flow" not in prediction or "flow" not in batch:
        return prediction["pred"].new_zeros(())
    d = prediction["flow"] - batch["flow"].to(prediction["flow"])
    return picture_mean(torch.sqrt(d * d + 1e-6), batch)


LOSSES: dict[str, LossFn] = {"charbonnier": charbonnier, "census": census, "edge": edge,
                             "pyramid": pyramid, "distill": distill, "psnr": psnr}


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
