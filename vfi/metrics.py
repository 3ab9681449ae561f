"""Image quality, per sample: PSNR and SSIM in torch (B x C x H x W in [0, 1]).

Per-sample values (shape ``(B,)``) so evaluation can bucket by t and rank samples; the
caller averages. SSIM follows Wang et al. 2004: 11x11 gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03, computed per channel and averaged, valid region only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def psnr(pred: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """10 log10(1 / MSE) per sample, capped (identical images would be +inf)."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    return (-10 * torch.log10(mse.clamp_min(10 ** (-max_db / 10))))


def gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor
                    ) -> torch.Tensor:
    """A normalised separable gaussian as a depthwise conv kernel."""
    x = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per sample (images smaller than the window are compared whole)."""
    x, y = pred.float(), target.float()
    channels = x.shape[1]
    size = min(SSIM_WINDOW, *x.shape[-2:])
    win = gaussian_window(size, SSIM_SIGMA, channels, x)
    blur = lambda z: F.conv2d(z, win, groups=channels)
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
