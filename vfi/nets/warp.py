"""Backward warping, stateless (IFRNet's ``utils.warp``): no cached grids, no module.

A cached base grid tied to one device and size is the classic source of "expected all
tensors on the same device" errors and of silent wrong results after a resize; building
the grid per call from the input costs little next to the convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def base_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates (1 x 2 x H x W, x then y) on ``like``'s device and dtype."""
    ys = torch.arange(height, device=like.device, dtype=like.dtype)
    xs = torch.arange(width, device=like.device, dtype=like.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy)).unsqueeze(0)


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` (B x C x H x W) at ``p + flow(p)``; flow is B x 2 x H x W in pixels.

    ``out[y, x] = img[y + flow_y, x + flow_x]`` (bilinear, borders repeated), so a flow
    from the target time to a frame pulls that frame's pixels into the target.
    """
    if flow.shape[1] != 2 or flow.shape[-2:] != img.shape[-2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match image {tuple(img.shape)}")
    height, width = img.shape[-2:]
    coords = base_grid(height, width, flow) + flow.to(img.dtype)
    # grid_sample wants x, y in [-1, 1] with align_corners=True: -1 is pixel 0's centre.
    gx = coords[:, 0] * (2.0 / max(width - 1, 1)) - 1.0
    gy = coords[:, 1] * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
