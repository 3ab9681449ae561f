"""Cuts and held drawings found while streaming, with the pipeline's own rules.

``interpolate`` must not read a video twice or keep it in memory, yet it must decide
cuts and holds the way the dataset stages do, so that what the model was trained on
(triplets of distinct drawings inside one scene) is what it is asked to do. So each
frame is measured as detect_cuts measures it (analysis size, PIL grey, the same
hashes and motion, the PySceneDetect detector from ``params.cuts``), and the hold rule
of :mod:`pipeline.triplets` is applied frame by frame.

Two things differ from the table version, both because the stream has no future:

- Detectors may report a cut a few frames late (PySceneDetect's flash filter merges
  cuts closer than ``min_scene_len``), so frames wait in a window of
  ``event_buffer_length + 2`` frames before their scene is final.
- A jump to an unrelated picture is a cut even when the detector misses it: both
  hashes at least ``HASH_CUT_BITS`` of 64 bits from the previous frame's (unrelated
  images differ in 32 +- 4 bits). Measured: consecutive frames of one scene stay
  under 23 (synthetic set, Popeye) while every hard cut and flash frame is at 24 or
  more; the content detector scored one Popeye cut at 27.0 against its threshold of
  27 and missed it. A dataset can afford such a miss (the filter stage drops the
  triplet); a blended frame across a cut in a film cannot.
- The motion gate of the hold rule is a percentile of the whole source's certainly
  held motion (:func:`pipeline.triplets.motion_gate`). Here it is the same percentile
  of the held motion seen so far (a fixed histogram: bounded memory), so the first
  second or so, before ``MIN_HELD_PAIRS`` held pairs, is judged by hashes alone.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scenedetect.common import FrameTimecode, Timecode

from pipeline.config import CutsParams, TripletParams
from pipeline.detectors import DEFAULT_RATE, TICKS_PER_SECOND, make_detector
from pipeline.hashing import frame_hashes
from pipeline.triplets import MIN_HELD_PAIRS
from pipeline.video import analysis_size

log = logging.getLogger("inbetweener.vfi.stream_analysis")

HASH_CUT_BITS = 24  # both hashes this far from the previous frame's: a cut (module doc)
MOTION_BINS = 1 << 14  # held-motion histogram over 0..256 grey levels: 1/64 level per bin


@dataclass
class Measured:
    """One frame as the analysis sees it, plus whatever the caller attached (pixels)."""

    index: int
    pts: Fraction
    phash: int
    dhash: int
    motion: float
    payload: Any = None
    cut_by: str = ""  # "detector" or "hash" when it starts a new scene (final once it
    #                   leaves the window); the detector's word wins

    @property
    def cut(self) -> bool:
        return bool(self.cut_by)


class FrameMeter:
    """Hashes and motion of consecutive frames, measured as detect_cuts measures them."""

    def __init__(self, width: int, height: int, short_side: int) -> None:
        self.size = analysis_size(width, height, short_side)
        self.prev: np.ndarray | None = None
        self.small: np.ndarray | None = None  # the latest analysis-size RGB frame

    def measure(self, index: int, pts: Fraction, rgb: np.ndarray, payload: Any = None) -> Measured:
        """Area-resize to analysis size, grey as PIL "L", hashes and mean abs change."""
        small = rgb
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            small = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        grey = np.asarray(Image.fromarray(small).convert("L"))
        phash, dhash = frame_hashes(grey)
        motion = 0.0 if self.prev is None else cv2.mean(cv2.absdiff(grey, self.prev))[0]
        self.prev, self.small = grey, small
        return Measured(index, pts, phash, dhash, float(motion), payload)


def unrelated(a: Measured, b: Measured) -> bool:
    """Whether two frames' hashes are as far apart as unrelated pictures'."""
    return min((a.phash ^ b.phash).bit_count(), (a.dhash ^ b.dhash).bit_count()) >= HASH_CUT_BITS


class CutWindow:
    """Feeds the ``params.cuts`` detector and holds frames until their scene is final."""

    def __init__(self, params: CutsParams, fps: float) -> None:
        self.detector = make_detector(params)
        self.lag = self.detector.event_buffer_length + 2
        self.rate = float(fps) if fps > 0 else DEFAULT_RATE
        self.base = Fraction(1, TICKS_PER_SECOND)
        self.window: deque[tuple[int, Measured]] = deque()  # (tick, frame)
        self.last_tick: int | None = None
        self.late = 0  # cuts reported for frames that had already left the window
        self.prev: Measured | None = None

    def _timecode(self, pts: Fraction) -> tuple[int, FrameTimecode]:
        """Strictly increasing microsecond ticks, as detect_cuts feeds its detectors."""
        tick = round(pts * TICKS_PER_SECOND)
        if self.last_tick is not None and tick <= self.last_tick:
            tick = self.last_tick + 1
        self.last_tick = tick
        return tick, FrameTimecode(Timecode(pts=tick, time_base=self.base), fps=self.rate)

    def _mark(self, cuts: list[FrameTimecode]) -> None:
        """Flag the frame each reported cut timecode refers to (first at or after it)."""
        for tc in cuts:
            tick = round(Fraction(tc.pts) * tc.time_base * TICKS_PER_SECOND)
            frame = next((f for t, f in self.window if t >= tick), None)
            if frame is None or (self.window[0][0] > tick):
                self.late += 1
                log.warning("cut at %.3f s reported after its frame was written; ignored",
                            tick / TICKS_PER_SECOND)
            elif frame.index > 0:
                frame.cut_by = "detector"

    def push(self, frame: Measured, bgr: np.ndarray) -> list[Measured]:
        """Add a frame (``bgr``: its analysis-size image); return frames now final."""
        tick, timecode = self._timecode(frame.pts)
        self.window.append((tick, frame))
        self._mark(self.detector.process_frame(timecode, bgr))
        if self.prev is not None and not frame.cut and unrelated(self.prev, frame):
            frame.cut_by = "hash"
        self.prev = frame
        out = []
        while len(self.window) > self.lag:
            out.append(self.window.popleft()[1])
        return out

    def finish(self) -> list[Measured]:
        """Let the detector close its last scene; every remaining frame is final."""
        if self.window:
            self._mark(self.detector.post_process(self._timecode_of_last()))
        out = [f for _, f in self.window]
        self.window.clear()
        return out

    def _timecode_of_last(self) -> FrameTimecode:
        return FrameTimecode(Timecode(pts=self.window[-1][0], time_base=self.base), fps=self.rate)


@dataclass
class NoiseGate:
    """Running :func:`pipeline.triplets.motion_gate`: factor x p90 of held motion so far."""

    params: TripletParams
    counts: np.ndarray = field(default_factory=lambda: np.zeros(MOTION_BINS, np.int64))
    total: int = 0

    def add(self, motion: float) -> None:
        self.counts[min(int(motion * MOTION_BINS / 256), MOTION_BINS - 1)] += 1
        self.total += 1

    @property
    def value(self) -> float:
        if self.params.hold_noise_factor == 0 or self.total < MIN_HELD_PAIRS:
            return float("inf")
        rank = np.searchsorted(np.cumsum(self.counts), 0.9 * self.total)
        p90 = (rank + 0.5) * 256 / MOTION_BINS  # the bin's centre
        return max(self.params.hold_min_motion, self.params.hold_noise_factor * p90)


class HoldTracker:
    """Drawing ids frame by frame: :func:`pipeline.triplets.assign_drawings`' rule.

    A frame continues the drawing when it is in the same scene, every hash in
    ``hold_hash`` is within ``hold_distance`` bits of the drawing's first frame, and its
    motion is under the gate.
    """

    def __init__(self, params: TripletParams) -> None:
        self.params = params
        self.names = ("phash", "dhash") if params.hold_hash == "both" else (params.hold_hash,)
        self.gate = NoiseGate(params)
        self.anchor: Measured | None = None
        self.prev: Measured | None = None
        self.scene, self.drawing, self.held = 0, -1, 0

    def _moved(self, frame: Measured) -> bool:
        assert self.anchor is not None
        far = any((getattr(frame, n) ^ getattr(self.anchor, n)).bit_count()
                  > self.params.hold_distance for n in self.names)
        return far or frame.motion > self.gate.value

    def push(self, frame: Measured) -> tuple[int, int]:
        """(scene, drawing) of the next frame, in order."""
        prev = self.prev
        if prev is not None and not frame.cut and frame.phash == prev.phash \
                and frame.dhash == prev.dhash:
            self.gate.add(frame.motion)  # certainly held: this is the source's noise
        self.scene += int(frame.cut)
        if self.anchor is None or frame.cut or self._moved(frame):
            self.anchor, self.drawing = frame, self.drawing + 1
        else:
            self.held += 1
        self.prev = frame
        return self.scene, self.drawing
