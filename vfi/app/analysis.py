"""Cuts and held drawings found while streaming, with the pipeline's own rules.

``interpolate`` must not read a video twice or keep it in memory, yet it must decide
cuts and holds the way the dataset stages do, so that what the model was trained on
(triplets of distinct drawings inside one scene) is what it is asked to do. So each
frame is measured as detect_cuts measures it (analysis size, PIL grey, the same
hashes and motion, the PySceneDetect detector from ``params.cuts``), and held drawings
are decided by the very object detect_cuts uses, :class:`pipeline.holds.HoldTracker`,
fed the same grey frames in the same order (its noise estimate is causal, so the
stream needs no look-ahead for it), with drawings split at scene changes as
extract_triplets splits them.

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
- The hold rule's drift revision (a slow move found only once its drift crosses the
  gate, whose earlier frames then become drawings of their own) comes after those
  frames were scheduled; the stream keeps them as a hold (a still frame where the
  input moved by a fraction of a pixel). Everything else about holds is identical.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scenedetect.common import FrameTimecode, Timecode

from pipeline.config import CutsParams, TripletParams
from pipeline.detectors import DEFAULT_RATE, TICKS_PER_SECOND, make_detector
from pipeline.hashing import frame_hashes
from pipeline.holds import HoldTracker as DrawingTracker
from pipeline.holds import change_grid
from pipeline.video import analysis_size

log = logging.getLogger("inbetweener.vfi.stream_analysis")

HASH_CUT_BITS = 24  # both hashes this far from the previous frame's: a cut (module doc)


@dataclass
class Measured:
    """One frame as the analysis sees it, plus whatever the caller attached (pixels)."""

    index: int
    pts: Fraction
    phash: int
    dhash: int
    motion: float
    payload: Any = None
    grey: np.ndarray | None = None  # the analysis-size grey image (the hold rule's input)
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
        return Measured(index, pts, phash, dhash, float(motion), payload, grey)


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


class HoldTracker:
    """(scene, drawing) frame by frame: detect_cuts' hold rule, then extract_triplets'
    scene split (see module doc).

    ``drawing`` counts the stream's drawings (its last id), ``held`` the frames that
    continued one.
    """

    def __init__(self, params: TripletParams) -> None:
        self.params = params
        self.tracker = DrawingTracker(params)
        self.rule_drawing = -1  # the hold rule's id of the previous frame
        self.scene, self.drawing, self.held = 0, -1, 0

    def push(self, frame: Measured) -> tuple[int, int]:
        """(scene, drawing) of the next frame, in order."""
        if frame.grey is None:
            raise ValueError(f"frame {frame.index}: no analysis image to judge its hold by")
        step = self.tracker.push(change_grid(frame.grey, self.params.hold_block), (frame.phash, frame.dhash))
        self.scene += int(frame.cut)
        if self.drawing < 0 or frame.cut or step.drawing != self.rule_drawing:
            self.drawing += 1
        else:
            self.held += 1
        self.rule_drawing = step.drawing
        return self.scene, self.drawing
