"""Periodic duplicate frames left by an old frame-rate conversion: found and held together.

Some transfers show one frame twice in every ``period`` decoded frames and drop a film
frame nearby. A repeat is the same picture, not a drawing of its own, so no triplet may
use it as one. Each function works on one whole source (``motion`` in grey levels):

- :func:`find_cadence`: the repeat ``period`` and ``phase`` as a :class:`Cadence`, or None;
- :func:`hold_repeats`: joins each repeat frame to the drawing before it when the hold
  rule's change is within ``REPEAT_GATES`` gates (a real change on the phase stays apart);
- :func:`find_drop`: the phase whose step skips a film frame (``Cadence.drop``, -1: none);
- :func:`film_time`: each frame's time in film frames (film runs at ``FILM_FPS``); the
  frame number when there is no cadence. Triplets take ``t`` from it.

The cadence is one per source, from frame 0 on. Measurements and history: docs/NOTES.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

PERIODS = range(3, 9)  # frame periods looked for
MIN_SHARE = 0.8  # share of one phase's frames that must be motion minima
MAX_OTHER = 0.5  # ... and of every other phase at most this: one repeat a period (holds
#                  on twos are minima at two phases of a period of 4)
MIN_PHASE_FRAMES = 24  # a phase needs this many frames (moving ones) to judge
MIN_MOTION = 0.5  # grey levels: neighbours this still say nothing (a held shot)
REPEAT_GATES = 2.0  # a repeat frame joins the drawing before it up to this change (gates)
FILM_FPS = 24.0  # frames/s of the film a conversion was made from
NO_DROP = -1  # Cadence.drop when no film frame is dropped (or the rate is unknown)


@dataclass(frozen=True)
class Cadence:
    """A source's conversion repeats: frames with ``frame % period == phase`` repeat the
    frame before; ``share`` of that phase's judged frames were motion minima; the step
    into a frame with ``frame % period == drop`` skips a film frame (``NO_DROP``: none;
    :func:`find_cadence` leaves it so, :func:`find_drop` decides it)."""

    period: int
    phase: int
    share: float
    drop: int = NO_DROP


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


def drops_per_period(period: int, fps: float) -> int:
    """Film frames a period of ``period`` decoded frames at ``fps`` drops: 0 or 1.

    The period's ``period`` decoded frames last ``round(period * FILM_FPS / fps)`` film
    frames and show ``period - 1`` distinct ones (one is repeated); the film frames not
    shown were dropped (clipped to 0..1: :func:`film_time` models one drop a period at
    most). An unknown rate (``fps <= 0``) drops none: the repeats are certain, a drop
    would be a guess.
    """
    if fps <= 0:
        return 0
    film = round(period * FILM_FPS / fps)
    return int(np.clip(film - (period - 1), 0, 1))


def find_drop(motion: np.ndarray, scene_start: np.ndarray, cadence: Cadence, fps: float) -> Cadence:
    """``cadence`` with its drop phase: none when the frame rates say no film frame is
    dropped, else the non-repeat phase whose median motion over moving frames (not scene
    starts) is largest, the picture moving two film frames' worth there."""
    if drops_per_period(cadence.period, fps) == 0:
        return replace(cadence, drop=NO_DROP)
    motion = np.asarray(motion, np.float64)
    frames = np.arange(len(motion))
    moving = (motion >= MIN_MOTION) & ~np.asarray(scene_start, bool) & (frames > 0)
    phase_of = frames % cadence.period
    medians = {phase: float(np.median(motion[moving & (phase_of == phase)]))
               for phase in range(cadence.period)
               if phase != cadence.phase and (moving & (phase_of == phase)).any()}
    drop = max(medians, key=medians.__getitem__) if medians else NO_DROP
    return replace(cadence, drop=drop)


def film_time(n_frames: int, cadence: Cadence | None) -> np.ndarray:
    """Each decoded frame's true time in film frames (float64, frame 0 at 0): the frame
    number without a cadence; with one, steps of 0 into a repeat, 2 into the frame after
    a drop, 1 elsewhere (module doc)."""
    frames = np.arange(n_frames)
    if cadence is None:
        return frames.astype(np.float64)
    phase = frames % cadence.period
    step = np.where(phase == cadence.phase, 0, np.where(phase == cadence.drop, 2, 1))
    step[:1] = 0
    return np.cumsum(step).astype(np.float64)
