"""The in-betweening networks and their inference wrapper.

Both take the two key drawings ``f0``, ``f2`` (B x 3 x H x W in [0, 1]) and the time
``t`` in [0, 1] of the wanted frame (B,), broadcast as an input channel, and return a
dict of predictions (``pred``: the frame at t; the flow model adds its flows and mask).
``forward`` predicts only: losses live in :mod:`vfi.losses`, padding in
:func:`interpolate`, so the networks assume sizes divisible by ``model.multiple``.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vfi.blocks import Down, FlowBlock, Up, conv
from vfi.config import ModelParams
from vfi.teacher import DisFlow
from vfi.warp import warp

FLOW_IN = 3 + 3 + 3 + 3 + 1 + 4 + 1 + 3  # f0, f2, warped f0, warped f2, t, flows, mask, res


def time_map(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t (B,) -> B x 1 x H x W of ``like``'s size, device and dtype."""
    t = t.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1, 1)
    return t.expand(like.shape[0], 1, *like.shape[-2:])


def linear_blend(f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) f0 + t f2: the baseline both networks start from."""
    tm = time_map(t, f0)
    return (1 - tm) * f0 + tm * f2


def finish(pred: torch.Tensor, training: bool) -> torch.Tensor:
    """Clamp to [0, 1] for use, not in training: a clamp has zero gradient outside the
    range, and a prediction pushed out early would never come back (dead pixels)."""
    return pred if training else pred.clamp(0, 1)


class FlowNet(nn.Module):
    """Coarse-to-fine flow network (IFNet/IFRNet family).

    Block ``i`` sees both frames, both frames warped with the current flows, t, and the
    current flows, mask and residual, all resized to 1/``2**(scales-1-i)``; it predicts
    corrections that are upsampled and added. The result is the fusion
    ``m * warp(f0, flow_t0) + (1 - m) * warp(f2, flow_t1) + residual``, clamped.
    Before training it outputs the linear blend exactly (zero flows, ``m = 1 - t``,
    zero residual), so training starts from the baseline it has to beat.
    """

    def __init__(self, params: ModelParams) -> None:
        super().__init__()
        self.params = params
        self.scales = [2 ** (params.scales - 1 - i) for i in range(params.scales)]
        self.blocks = nn.ModuleList(
            FlowBlock(FLOW_IN, params.width, params.depth) for _ in self.scales)
        self.multiple = 4 * self.scales[0]

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``init``: starting flows t->0, t->1 (B x 4 x H x W, pixels); zero if None."""
        batch, _, height, width = f0.shape
        tm = time_map(t, f0)
        flow = f0.new_zeros(batch, 4, height, width) if init is None else init.to(f0)
        # logit(1 - t): the mask that makes the fusion the linear blend.
        mask = torch.logit((1 - tm).clamp(1e-3, 1 - 1e-3))
        res = f0.new_zeros(batch, 3, height, width)
        w0, w1 = (f0, f2) if init is None else (warp(f0, flow[:, :2]), warp(f2, flow[:, 2:]))
        for scale, block in zip(self.scales, self.blocks):
            x = torch.cat((f0, f2, w0, w1, tm, flow / scale, mask, res), 1)
            if scale > 1:
                x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear",
                                  align_corners=False, antialias=True)
            delta = block(x)
            if scale > 1:
                delta = F.interpolate(delta, size=(height, width), mode="bilinear",
                                      align_corners=False)
            flow = flow + delta[:, :4] * scale
            mask = mask + delta[:, 4:5]
            res = res + delta[:, 5:8]
            w0, w1 = warp(f0, flow[:, :2]), warp(f2, flow[:, 2:])
        m = torch.sigmoid(mask)
        pred = finish(m * w0 + (1 - m) * w1 + res, self.training)
        return {"pred": pred, "flow": flow, "mask": m, "warped0": w0, "warped1": w1}


class UNet(nn.Module):
    """Flow-free baseline: a residual U-Net on (f0, f2, t) correcting the linear blend.

    It shows how much the explicit warp buys: without flows, motion larger than the
    receptive field can only be blurred, not moved.
    """

    def __init__(self, params: ModelParams) -> None:
        super().__init__()
        self.params = params
        widths = [params.width * 2 ** level for level in range(params.scales)]
        self.stem = nn.Sequential(conv(7, widths[0]), conv(widths[0], widths[0]))
        self.downs = nn.ModuleList(Down(a, b) for a, b in itertools.pairwise(widths))
        self.ups = nn.ModuleList(Up(b, a, a) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(widths[0], 3, 3, 1, 1)
        # Near zero, not zero: starts as the linear blend, yet the gradient reaches the
        # body from the first step (a zero head would block it).
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        self.multiple = 2 ** (params.scales - 1)

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``init`` is accepted for a common signature and ignored: no flows here."""
        x = self.stem(torch.cat((f0, f2, time_map(t, f0)), 1))
        skips = [x]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in reversed(self.ups):
            x = up(x, skips.pop())
        return {"pred": finish(linear_blend(f0, f2, t) + self.head(x), self.training)}


ARCHS: dict[str, type[nn.Module]] = {"flow": FlowNet, "unet": UNet}


def build_model(params: ModelParams | dict[str, Any]) -> nn.Module:
    """The network named by ``params.arch`` (a dict, e.g. from a checkpoint, works too)."""
    if isinstance(params, dict):
        params = ModelParams.model_validate(params)
    return ARCHS[params.arch](params)


def param_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad bottom/right to a multiple; returns the original (H, W) to crop back.

    Replicate, not zeros: a black border would be a strong fake edge for the flow.
    """
    height, width = x.shape[-2:]
    ph = (-height) % multiple
    pw = (-width) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (height, width)


def needs_init(model: nn.Module) -> bool:
    """Whether the model starts from classical flows (``flow_init`` other than zero)."""
    params = getattr(model, "params", None)
    return isinstance(model, FlowNet) and params is not None and params.flow_init != "zero"


def classical_flow(params: ModelParams) -> DisFlow:
    """The classical flow a model with these params starts from (and trains against):
    DIS with ``dis_preset``, refined (pan candidate, splatting to t) for ``dis_pan``."""
    return DisFlow(params.dis_preset, refine=params.flow_init == "dis_pan")


def init_flows(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor
               ) -> torch.Tensor | None:
    """Classical flows t->0, t->1 for each sample of a batch when the model wants them.

    The flows between a pair do not depend on t, so a batch of one pair at many times
    (``interpolate --factor 4``) computes them once.
    """
    if not needs_init(model):
        return None
    flow = classical_flow(model.params)
    pairs: list[torch.Tensor] = []
    for i in range(f0.shape[0]):
        same = i > 0 and torch.equal(f0[i], f0[i - 1]) and torch.equal(f2[i], f2[i - 1])
        pairs.append(pairs[-1] if same else flow.pair(f0[i], f2[i]))
    return torch.stack([flow.at(pair, tt) for pair, tt in zip(pairs, t)])


def forward_padded(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                   init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``model`` on any size: pad to ``model.multiple``, run, crop every output back."""
    multiple = int(getattr(model, "multiple", 1))
    p0, (height, width) = pad_to_multiple(f0, multiple)
    p2, _ = pad_to_multiple(f2, multiple)
    pinit = None if init is None else pad_to_multiple(init, multiple)[0]
    out = model(p0, p2, t, pinit)
    return {k: v[..., :height, :width] for k, v in out.items()}


@torch.no_grad()
def interpolate(model: nn.Module, f0: torch.Tensor, f2: torch.Tensor,
                t: float | torch.Tensor = 0.5, init: torch.Tensor | None = None
                ) -> torch.Tensor:
    """The frame at ``t`` between ``f0`` and ``f2`` (C x H x W or B x C x H x W, any size).

    Inputs move to the model's device; the result has the input's shape, on that device.
    ``init``: the classical flows (B x 4 x H x W) when the caller already has them (a
    fixed validation set), else :func:`init_flows` computes them.
    """
    device = next(model.parameters()).device
    single = f0.dim() == 3
    a = (f0.unsqueeze(0) if single else f0).to(device)
    b = (f2.unsqueeze(0) if single else f2).to(device)
    tt = torch.as_tensor(t, dtype=a.dtype, device=device).reshape(-1).expand(a.shape[0])
    was_training = model.training
    model.eval()
    try:
        if init is None:
            init = init_flows(model, a, b, tt)
        pred = forward_padded(model, a, b, tt, None if init is None else init.to(device))["pred"]
    finally:
        model.train(was_training)
    return pred[0] if single else pred


def default_device() -> torch.device:
    """CUDA when there is one; everything also runs on the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = [
    "FlowNet",
    "UNet",
    "build_model",
    "classical_flow",
    "default_device",
    "forward_padded",
    "init_flows",
    "interpolate",
    "linear_blend",
    "param_count",
]
