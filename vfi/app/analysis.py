"""Cuts and held drawings found while streaming, with the pipeline's own rules.

``interpolate`` reads a video once, without keeping it, yet must cut and hold as the
dataset stages do, so the model is asked what it was trained on. :class:`FrameMeter`
measures each frame as detect_cuts does (analysis size, PIL grey, same hashes and
motion), :class:`CutWindow` cuts with the same stream (``params.cuts``,
:func:`pipeline.analysis.detectors.make_cut_stream`) and :class:`SceneDrawings` holds
with the same :class:`pipeline.analysis.holds.HoldTracker`, split at scene changes.
Because the stream has no future: a blank frame's edges start scenes; frames wait in a
window of ``lookahead + 1`` frames until their scene is final; the drift revision
reaches only frames still in that window (judged as they enter,
:meth:`SceneDrawings.judge`, scheduled as they leave), and older ones stay a hold,
counted in ``vfi.app.interpolate.Pipeline.late_revisions``; all else about holds is
identical. Rationale, and a rule that was dropped: docs/NOTES.md.
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

from pipeline.analysis.detectors import DEFAULT_RATE, make_cut_stream
from pipeline.analysis.holds import HoldTracker
from pipeline.analysis.measure import FrameMeter as PipelineMeter
from pipeline.core.config import CutsParams, FilterParams, TripletParams
from pipeline.media.video import analysis_size

log = logging.getLogger("inbetweener.vfi.interpolate")  # one name per command the user runs



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
    cut_by: str = ""  # "detector" (the cut stream) or "blank" (a blank run's edge): a new scene
    rule_drawing: int | None = None  # the hold rule's drawing id (SceneDrawings.judge), revisions applied

    @property
    def cut(self) -> bool:
        return bool(self.cut_by)


class FrameMeter:
    """Analysis size and PIL grey, then the pipeline's per-frame measure
    (:class:`pipeline.analysis.measure.FrameMeter`)."""

    def __init__(self, width: int, height: int, short_side: int) -> None:
        self.size = analysis_size(width, height, short_side)
        self.meter = PipelineMeter()
        self.small: np.ndarray | None = None  # the latest analysis-size RGB frame

    def measure(self, index: int, pts: Fraction, rgb: np.ndarray, payload: Any = None) -> Measured:
        """Area-resize to analysis size, grey as PIL "L", hashes and mean abs change."""
        small = rgb
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            small = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        grey = np.asarray(Image.fromarray(small).convert("L"))
        m = self.meter.measure(grey)
        self.small = small
        return Measured(index, pts, m.phash, m.dhash, float(m.motion), payload, grey)


class CutWindow:
    """Feeds the ``params.cuts`` cut stream (the one detect_cuts drives) and holds frames
    until their scene is final: ``lookahead + 1`` frames, the latest a cut can come."""

    def __init__(self, params: CutsParams, fps: float,
                 blank_std: float = FilterParams().blank_std) -> None:
        self.stream = make_cut_stream(params, fps if fps > 0 else DEFAULT_RATE)
        self.lag = self.stream.lookahead + 1
        self.window: deque[Measured] = deque()
        self.late = 0  # cuts reported for frames that had already left the window
        self.pushed = 0
        self.blank_std = blank_std
        self.prev_blank: bool | None = None

    def _mark(self, cuts: list[int]) -> None:
        """Flag the frame each reported cut (a push-order index) refers to."""
        first = self.pushed - len(self.window)
        for cut in cuts:
            if cut < first:
                self.late += 1
                log.warning("cut at frame %d reported after it was written; ignored", cut)
            elif cut - first < len(self.window):
                self.window[cut - first].cut_by = self.window[cut - first].cut_by or "detector"

    def push(self, frame: Measured, rgb: np.ndarray) -> list[Measured]:
        """Add a frame (``rgb``: its analysis-size image); return frames now final."""
        self.window.append(frame)
        self.pushed += 1
        self._blank_edge(frame)
        self._mark(self.stream.push(rgb, float(frame.pts)))
        out = []
        while len(self.window) > self.lag:
            out.append(self.window.popleft())
        return out

    def _blank_edge(self, frame: Measured) -> None:
        """A frame entering or leaving a blank run (a flash, the black of a fade) starts a
        scene: the filter's flash rule (``filter.blank_std``) drops every triplet touching
        such a frame; here nothing is blended into or out of one. The cut stream may
        merge a flash with the cut after it (``min_scene_len``), which alone would let
        the flash be blended into the next shot."""
        if frame.grey is None:
            return
        blank = float(frame.grey.std()) <= self.blank_std
        if self.prev_blank is not None and blank != self.prev_blank and not frame.cut:
            frame.cut_by = "blank"
        self.prev_blank = blank

    def revise(self, ids: list[int]) -> int:
        """Give the frames pushed last the hold rule's revised drawing ids (a drift
        revision, ``SceneDrawings.judge``), oldest first; returns how many of them had
        already left the window (kept as they were scheduled)."""
        if not ids:  # nearly every frame: no revision
            return 0
        waiting = min(len(ids), len(self.window))
        for frame, drawing in zip(list(self.window)[len(self.window) - waiting:], ids[len(ids) - waiting:]):
            frame.rule_drawing = drawing
        return len(ids) - waiting

    def finish(self) -> list[Measured]:
        """Let the stream report its last cuts; every remaining frame is final."""
        self._mark(self.stream.finish())
        out = list(self.window)
        self.window.clear()
        return out


class SceneDrawings:
    """(scene, drawing) frame by frame: detect_cuts' hold rule, then extract_triplets'
    scene split (see module doc).

    ``drawing`` counts the stream's drawings (its last id), ``held`` the frames that
    continued one. ``enabled=False`` (``interpolate --holds off``) makes every frame a
    drawing of its own: footage known to move every frame (CG, live action) then never
    has a frame taken for a hold, whatever its noise.
    """

    def __init__(self, params: TripletParams, enabled: bool = True) -> None:
        self.params = params
        self.enabled = enabled
        self.judged = -1  # frames judged with the rule off (each its own drawing)
        self.tracker = HoldTracker(params)
        self.rule_drawing = -1  # the hold rule's id of the previous frame
        self.scene, self.drawing, self.held = 0, -1, 0

    def judge(self, frame: Measured) -> list[int]:
        """Run the hold rule on the next measured frame (in order, before its scene is
        known: the rule ignores scenes), setting ``frame.rule_drawing``. Returns the
        revised ids of the frames just before it when the rule's drift revision splits
        them (``HoldStep.split_back``), oldest first: the caller applies them to the
        frames not yet scheduled (:meth:`CutWindow.revise`), so the stream's drawings
        are the pipeline's wherever the revision reaches back less than the window."""
        if frame.grey is None:
            raise ValueError(f"frame {frame.index}: no analysis image to judge its hold by")
        if not self.enabled:
            self.judged += 1
            frame.rule_drawing = self.judged
            return []
        step = self.tracker.push_grey(frame.grey, (frame.phash, frame.dhash))
        frame.rule_drawing = step.drawing
        return list(range(step.drawing - step.split_back, step.drawing))

    def push(self, frame: Measured) -> tuple[int, int]:
        """(scene, drawing) of the next frame, in order (judged here if not yet)."""
        if frame.rule_drawing is None:
            self.judge(frame)
        rule_drawing = frame.rule_drawing
        self.scene += int(frame.cut)
        if self.drawing < 0 or frame.cut or rule_drawing != self.rule_drawing:
            self.drawing += 1
        else:
            self.held += 1
        self.rule_drawing = rule_drawing
        return self.scene, self.drawing
