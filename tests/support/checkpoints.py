"""Tiny untrained checkpoints for the inference paths: a flow network small enough to
run in milliseconds, whose output is known without training (DIS flows or a blend)."""

from __future__ import annotations

from pathlib import Path

import torch

from vfi.config import ModelParams
from vfi.nets import build_model


def tiny_flow_checkpoint(path: Path, flow_init: str = "dis") -> Path:
    """Save an untrained ``flow`` network: ``flow_init="dis"`` reproduces DIS (fast
    preset), ``"zero"`` the linear blend. Seeded, so the bytes are the same each time."""
    params = ModelParams(arch="flow", width=8, depth=1, scales=2, flow_init=flow_init,
                         dis_preset="fast")
    torch.manual_seed(0)
    torch.save({"model": build_model(params).state_dict(),
                "model_config": params.model_dump()}, path)
    return path
