"""The in-betweening networks, pure torch (no OpenCV, no data, no training).

``build_model(params)`` makes the network ``model.arch`` names; every network maps
``(f0, f2, t, init=None)`` to a dict with ``pred`` and assumes sizes divisible by its
``multiple`` (the inference wrapper pads).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vfi.config import ModelParams
from vfi.nets.base import linear_blend, pad_to_multiple, time_map
from vfi.nets.flownet import FlowNet
from vfi.nets.rife import Rife
from vfi.nets.unet import UNet
from vfi.nets.warp import warp

ARCHS: dict[str, type[nn.Module]] = {"rife": Rife, "flow": FlowNet, "unet": UNet}


def build_model(params: ModelParams | dict[str, Any]) -> nn.Module:
    """The network named by ``params.arch`` (a dict, e.g. from a checkpoint, works too)."""
    if isinstance(params, dict):
        params = ModelParams.model_validate(params)
    return ARCHS[params.arch](params)


def param_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ARCHS", "FlowNet", "Rife", "UNet", "build_model", "linear_blend", "pad_to_multiple",
           "param_count", "time_map", "warp"]
