"""Test-time augmentation: the network run on mirrored copies of a pair, averaged.

An in-between should not depend on which way the picture or time runs: the frame at t
between (f0, f2) is the frame at 1 - t between (f2, f0), and a mirrored pair has the
mirrored in-between. A network only approximately obeys that, so the mean of its
answers over those symmetric copies cancels part of its error, at one network pass per
copy. Options (``--tta``):

- ``none``: one pass (the default: the cost every figure of docs/MODEL.md is at);
- ``reverse``: also the time-reversed pair at 1 - t (2 passes);
- ``flip``: also the left-right mirrored pair (2 passes);
- ``both``: the four combinations (4 passes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Pass = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TTA = {"none": ((False, False),),
       "reverse": ((False, False), (True, False)),
       "flip": ((False, False), (False, True)),
       "both": ((False, False), (True, False), (False, True), (True, True))}


def check_tta(tta: str) -> None:
    """A ValueError naming the choices for an unknown option."""
    if tta not in TTA:
        raise ValueError(f"--tta {tta!r}: expected one of {', '.join(TTA)}")


def averaged(run: Pass, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor, tta: str
             ) -> torch.Tensor:
    """Mean of ``run`` (B x C x H x W frames, B times -> B x C x H x W) over ``tta``'s
    copies, each mapped back (mirrored again) before averaging."""
    check_tta(tta)
    total = None
    for reverse, flip in TTA[tta]:
        a, b, tt = (f2, f0, 1 - t) if reverse else (f0, f2, t)
        if flip:
            a, b = a.flip(-1), b.flip(-1)
        out = run(a, b, tt)
        out = out.flip(-1) if flip else out
        total = out if total is None else total + out
    return total / len(TTA[tta])
