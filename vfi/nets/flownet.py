"""The flow network: coarse-to-fine flows from t to both ends, backward warps, a fusion
mask and a residual (the IFNet/IFRNet family). Pure torch: a classical start, when
wanted, comes in as ``init`` (computed by :mod:`vfi.inference.interpolator`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfi.config import ModelParams
from vfi.nets.base import finish, time_map
from vfi.nets.blocks import FlowBlock
from vfi.nets.warp import warp

FLOW_IN = 3 + 3 + 3 + 3 + 1 + 4 + 1 + 3  # f0, f2, warped f0, warped f2, t, flows, mask, res


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
