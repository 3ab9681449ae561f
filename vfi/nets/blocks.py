"""Building blocks, one per stage of the architectures in :mod:`vfi.nets`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + PReLU: the unit of IFNet/IFRNet (PReLU keeps small negative flows)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout))


class ResConv(nn.Module):
    """A residual 3x3 conv with a learned scale (IFNet's ``ResConv``): deep stacks of it
    train stably from scratch because each starts close to the identity."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, width, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) * self.beta + x)


FLOW_BLOCK_OUT = 8  # flow t->0 (2), flow t->1 (2), mask logit (1), residual (3)


class FlowBlock(nn.Module):
    """One scale of the coarse-to-fine flow network.

    Input is already resized to the block's scale; two stride-2 convs bring it to 1/4
    of that (a cheap large receptive field, which is what the flow needs), ``depth``
    residual convs, then a transposed conv and a bilinear x2 return to the input size.
    Output: corrections of flows (in pixels at the block's scale), mask logit, residual.
    """

    def __init__(self, cin: int, width: int, depth: int) -> None:
        super().__init__()
        self.down = nn.Sequential(conv(cin, width // 2, 2), conv(width // 2, width, 2))
        self.body = nn.Sequential(*[ResConv(width) for _ in range(depth)])
        self.up = nn.ConvTranspose2d(width, FLOW_BLOCK_OUT * 4, 4, 2, 1)
        self.shuffle = nn.PixelShuffle(2)
        # Start as "no correction": the first forward then equals the previous scale's
        # estimate (or zero flow, mask 0.5: the blend), never a random warp.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.up(self.body(self.down(x))))


class Down(nn.Module):
    """U-Net encoder level: halve the size, two convs."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(conv(cin, cout, 2), conv(cout, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Up(nn.Module):
    """U-Net decoder level: bilinear x2, concatenate the skip, two convs."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(conv(cin + cskip, cout), conv(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.net(torch.cat((x, skip), 1))
