"""Periodic duplicate frames left by an old frame-rate conversion: found and held together.

Some transfers repeat one frame in every ``period`` (and drop a film frame nearby): in
the shipped Popeye part 2 every frame ``i`` with ``i % 4 == 0`` repeats ``i - 1``, through
pans and action alike. Such a repeat is no drawing held by the animator, but it is the
same picture, so a triplet must not take it as a drawing of its own: the middle frame
would equal an end. The hold rule judges frame by frame, and in a pan the codec's
re-encoded copy can look just past its gates; the cadence, seen over the whole source,
settles it.

:func:`find_cadence` looks at the per-frame ``motion`` column (mean absolute grey
difference to the previous frame, at analysis size): at a conversion repeat it is a
local minimum, below both neighbours, at nearly every frame of one phase of the period,
whatever the content; drawings on twos or threes follow the animation's timing, which
changes from shot to shot, and come nowhere near that share at one phase alone (a
period of 2 is not looked for: it is what animation on twos looks like, and a period of 4
whose two even phases are both minima is the same thing). :func:`hold_repeats` then
joins each repeat frame to the drawing before it when the hold rule's own change
measure says it is close (within ``REPEAT_GATES`` gates), so a real change that happens
to fall on the phase (a cut, an edit that restarts the cadence) stays apart.

What it does not do: the dropped film frame next to each repeat makes one step of the
period twice as long in time; triplets over it keep the decoded frames' fraction as
``t`` (the true film time is not known from the decoded frames alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERIODS = range(3, 9)  # frame periods looked for
MIN_SHARE = 0.8  # share of one phase's frames that must be motion minima
MAX_OTHER = 0.5  # ... and of every other phase at most this: one repeat a period (holds
#                  on twos are minima at two phases of a period of 4)
MIN_PHASE_FRAMES = 24  # a phase needs this many frames (moving ones) to judge
MIN_MOTION = 0.5  # grey levels: neighbours this still say nothing (a held shot)
REPEAT_GATES = 2.0  # a repeat frame joins the drawing before it up to this change (gates)


@dataclass(frozen=True)
class Cadence:
    """A source's conversion repeats: frames with ``frame % period == phase`` repeat the
    frame before; ``share`` of that phase's judged frames were motion minima."""

    period: int
    phase: int
    share: float


def find_cadence(motion: np.ndarray, scene_start: np.ndarray) -> Cadence | None:
    """The periodic repeat pattern of one source, or None.

    ``motion``: per frame, in decode order; ``scene_start``: True at each scene's first
    frame (its motion is a cut's, not a repeat's). The shortest period whose best
    phase reaches ``MIN_SHARE`` while no other phase passes ``MAX_OTHER`` wins (a
    period-4 pattern is also a period-8 one).
    """
    motion = np.asarray(motion, np.float64)
    n = len(motion)
    if n < 3:
        return None
    index = np.arange(1, n - 1)
    prev, here, nxt = motion[:-2], motion[1:-1], motion[2:]
    usable = ~(scene_start[1:-1] | scene_start[2:]) & (np.maximum(prev, nxt) >= MIN_MOTION)
    minimum = (here < prev) & (here < nxt)
    for period in PERIODS:
        shares = []
        for phase in range(period):
            judged = usable & (index % period == phase)
            shares.append(float(minimum[judged].mean()) if judged.sum() >= MIN_PHASE_FRAMES else 0.0)
        order = np.argsort(shares)[::-1]
        best, second = shares[order[0]], shares[order[1]]
        if best >= MIN_SHARE and second <= MAX_OTHER:
            return Cadence(period, int(order[0]), best)
    return None


def hold_repeats(drawing: np.ndarray, change: np.ndarray, cadence: Cadence) -> np.ndarray:
    """Drawing ids with each repeat frame joined to the previous frame's drawing when its
    change (in gates, the hold rule's ``change`` column) is under ``REPEAT_GATES``;
    ids renumbered from 0 in order."""
    drawing = np.asarray(drawing, np.int64)
    n = len(drawing)
    starts = np.r_[True, drawing[1:] != drawing[:-1]]
    frames = np.arange(n)
    repeat = (frames % cadence.period == cadence.phase) & (frames > 0) & (np.asarray(change) <= REPEAT_GATES)
    starts &= ~repeat
    return np.cumsum(starts) - 1
