"""Classical optical flow (OpenCV DIS): the evaluation baseline and the training teacher.

Learning flow from scratch through a photometric loss is slow on cartoons: flat paint
gives a bilinear warp no gradient, so in a few hundred CPU steps the network stays at
the linear blend (measured). DIS flows, scaled to t, are a cheap pseudo ground truth
that the ``distill`` loss pulls the network's flows toward; the photometric losses then
fix where DIS is wrong (occlusions, thin lines).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vfi.flow.pan import choose, global_shift
from vfi.flow.project import flow_to_time, trust

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
           "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def to_grey_u8(img: torch.Tensor) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W uint8 luma, DIS's input."""
    rgb = (img.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round()
    return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY)


class DisFlow:
    """Flows from time t to both ends, from DIS flow f0->f2 and f2->f0.

    A point moving by v from f0 to f2 is at p at time t, so it came from p - t v in f0
    (flow t->0 = -t F02) and goes to p + (1 - t) v in f2 (flow t->1 = -(1 - t) F20);
    the plain version reads F at p instead of at the point's origin (the classical
    baseline). ``refine`` makes it the model's starting point: each of F02, F20 is
    replaced per pixel by the frame's global shift where that explains the pair better
    (:mod:`vfi.flow.pan`: DIS's failure on fast pans), and the flows are carried to time t
    by forward splatting (:mod:`vfi.flow.project`: what arrives at p, not what left it).
    """

    def __init__(self, preset: str = "medium", refine: bool = False) -> None:
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.refine = refine

    def pair(self, f0: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """What does not depend on t, on f0's device: F02 (x, y), F20 (x, y) and, when
        refining, each flow's splatting weight (:func:`vfi.flow.project.trust`)."""
        g0, g2 = to_grey_u8(f0), to_grey_u8(f2)
        f02 = torch.from_numpy(self.dis.calc(g0, g2, None)).permute(2, 0, 1)
        f20 = torch.from_numpy(self.dis.calc(g2, g0, None)).permute(2, 0, 1)
        parts = [f02, f20]
        if self.refine:
            dx, dy = global_shift(g0, g2)
            a, b = f0.detach().cpu().float(), f2.detach().cpu().float()
            (f02, e02), (f20, e20) = choose(f02, (dx, dy), a, b), choose(f20, (-dx, -dy), b, a)
            parts = [f02, f20, trust(e02)[None], trust(e20)[None]]
        return torch.cat(parts).to(f0.device, torch.float32)

    def at(self, pair: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """Flows t->0, t->1 (4 x H x W) from a :meth:`pair`."""
        tt = float(t)
        if not self.refine:
            return torch.cat((-tt * pair[:2], -(1 - tt) * pair[2:4]))
        flows = (flow_to_time(pair[:2], tt, pair[4]), flow_to_time(pair[2:4], 1 - tt, pair[5]))
        return torch.cat(flows)

    def __call__(self, f0: torch.Tensor, f2: torch.Tensor, t: float | torch.Tensor
                 ) -> torch.Tensor:
        """4 x H x W float32 on f0's device: flow t->0 (x, y), flow t->1 (x, y)."""
        return self.at(self.pair(f0, f2), t)
