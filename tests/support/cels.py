"""A cartoon cel moving at a known speed: the truth at any t, for the pretrained nets."""

from __future__ import annotations

import numpy as np
import torch


def cel(t: float, shift: float, height: int, width: int) -> np.ndarray:
    """A cartoon cel: flat paint, a dark-outlined disc moving ``shift * t`` px right."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[:] = (0.85, 0.8, 0.6)
    img[ys > 0.7 * height] = (0.4, 0.6, 0.3)  # ground
    r = np.hypot(xs - (0.3 * width + shift * t), ys - 0.45 * height)
    img[r < 0.16 * height] = (0.1, 0.1, 0.1)
    img[r < 0.13 * height] = (0.9, 0.2, 0.2)
    return (img * 255).round().astype(np.uint8)


def frames(shift: float, ts: tuple[float, ...], height: int = 96, width: int = 128
           ) -> list[torch.Tensor]:
    return [torch.from_numpy(cel(t, shift, height, width)).permute(2, 0, 1).float() / 255
            for t in ts]
