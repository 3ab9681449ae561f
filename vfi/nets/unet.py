"""The flow-free baseline network: a residual U-Net on (f0, f2, t)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from vfi.config import ModelParams
from vfi.nets.base import finish, linear_blend, time_map
from vfi.nets.blocks import Down, Up, conv


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
