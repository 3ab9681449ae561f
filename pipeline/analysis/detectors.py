"""Hard-cut detection as detect_cuts and the video app drive it: frames pushed, never a file.

:class:`CutStream` is the only way either caller finds cuts (issue 12, one code path):
``push(rgb, pts)`` takes one analysis-size frame and returns the cut frames now final
(first frames of new scenes, in push order, never frame 0), ``finish()`` the rest;
``score`` is the score of the frame pushed last (the frames table's ``score`` column);
``lookahead`` bounds how many frames after a cut are pushed before it is reported.
:func:`make_cut_stream` builds the stream ``cuts.detector`` names: ``content``,
``adaptive``, ``hash`` or ``histogram`` (:class:`SceneDetectStream`, PySceneDetect),
``transnet`` (:class:`TransNetStream`, a reference) or ``combined``, the default
(:class:`CombinedStream`: cheap candidates, judged by how much picture they keep).
Below them: :func:`make_detector` (the PySceneDetect object), :func:`score_reader` and
:class:`DetectorClock` (frame pts -> strictly increasing timecodes, ``TICKS_PER_SECOND``
a second, and a cut back to its frame). Lookaheads, costs, measurements: docs/NOTES.md.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import cv2
import numpy as np
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
)
from scenedetect.stats_manager import StatsManager

from pipeline.analysis.transnet import MARGIN, STEP, WINDOW, TransNet, net_input
from pipeline.core.config import CutsParams

DEFAULT_RATE = 24.0  # frames/s assumed when the probe found no rate at all
TICKS_PER_SECOND = 1_000_000  # detector timecodes: pts in microseconds


class _MetricTap(StatsManager):
    """A StatsManager that keeps only the latest value of one metric (no growth)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.value = math.nan

    def set_metrics(self, timecode: int | FrameTimecode, metric_kv_dict: dict) -> None:
        if self.key in metric_kv_dict:
            self.value = float(metric_kv_dict[self.key])


def make_detector(params: CutsParams) -> SceneDetector:
    """The PySceneDetect detector object named by ``cuts.detector``.

    ``combined`` and ``transnet`` are no PySceneDetect detectors: for callers still
    driving the ``SceneDetector`` interface they come wrapped (:class:`StreamDetector`),
    the same :class:`CutStream` inside; new code should use :func:`make_cut_stream`.
    """
    if params.detector in ("combined", "transnet"):
        return StreamDetector(make_cut_stream(params, DEFAULT_RATE))
    if params.detector == "content":
        return ContentDetector(threshold=params.threshold, min_scene_len=params.min_scene_len)
    if params.detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=params.adaptive_threshold,
                                min_scene_len=params.min_scene_len,
                                min_content_val=params.min_content_val)
    if params.detector == "hash":
        return HashDetector(threshold=params.hash_threshold, min_scene_len=params.min_scene_len)
    if params.detector == "histogram":
        return HistogramDetector(threshold=params.histogram_threshold,
                                 min_scene_len=params.min_scene_len)
    raise ValueError(f"cuts.detector: unknown detector {params.detector!r}")


def score_reader(detector: SceneDetector) -> Callable[[], float]:
    """A function giving the detector's score for the frame it last processed.

    Content/adaptive keep it in ``_frame_score`` (private in 0.7: read defensively; a
    StatsManager would make them compute Canny edges we do not use). Hash/histogram
    only publish it through a StatsManager, which a ``_MetricTap`` catches.
    """
    if isinstance(detector, ContentDetector):
        return lambda: _as_float(getattr(detector, "_frame_score", None))
    metrics = detector.get_metrics()
    if not metrics:
        return lambda: math.nan
    tap = _MetricTap(metrics[0])
    detector.stats_manager = tap

    def read() -> float:
        value, tap.value = tap.value, math.nan
        return value

    return read


def _as_float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


class DetectorClock:
    """Turns frame pts into the strictly increasing timecodes detectors expect."""

    def __init__(self, fps: float) -> None:
        self.rate = float(fps) if fps > 0 else DEFAULT_RATE  # PySceneDetect snaps NTSC rates
        self.base = Fraction(1, TICKS_PER_SECOND)
        self.ticks: list[int] = []  # one per frame: maps a cut's timecode back to its frame

    def timecode(self, pts: float) -> FrameTimecode:
        tick = round(pts * TICKS_PER_SECOND)
        if self.ticks and tick <= self.ticks[-1]:  # repeated/backwards pts in a bad file
            tick = self.ticks[-1] + 1
        self.ticks.append(tick)
        return FrameTimecode(Timecode(pts=tick, time_base=self.base), fps=self.rate)

    def frame_of(self, timecode: FrameTimecode) -> int:
        """Index of the frame a detector's timecode refers to."""
        tick = round(Fraction(timecode.pts) * timecode.time_base * TICKS_PER_SECOND)
        return min(bisect.bisect_left(self.ticks, tick), len(self.ticks) - 1)


# --- the streaming interface (one code path for detect_cuts and the video app) ---------


class CutStream(ABC):
    """Frames pushed in presentation order; cut frames come out once final.

    ``push`` returns (and ``finish`` returns the remaining) indices of first frames of
    new scenes, counted from 0 in push order, each reported once, in increasing order,
    never 0. A cut at frame ``c`` is reported by the ``push`` of frame
    ``c + lookahead`` at the latest.
    """

    lookahead: int = 0
    score: float = 0.0  # the last pushed frame's score (0 for the first frame)

    @abstractmethod
    def push(self, rgb: np.ndarray, pts: float) -> list[int]:
        """Add the next analysis-size RGB frame; the cuts that became final."""

    @abstractmethod
    def finish(self) -> list[int]:
        """No more frames: every cut not yet reported."""


class SceneDetectStream(CutStream):
    """A PySceneDetect detector behind the :class:`CutStream` interface."""

    def __init__(self, detector: SceneDetector, fps: float) -> None:
        self.detector = detector
        self.clock = DetectorClock(fps)
        self._score = score_reader(detector)
        self._last: FrameTimecode | None = None
        # The flash filter holds a cut back up to min_scene_len frames; +1 for the frame
        # a detector reports the cut on (the one after its first frame, for some).
        self.lookahead = int(detector.event_buffer_length) + 1

    def _frames(self, timecodes: list[FrameTimecode]) -> list[int]:
        return sorted({self.clock.frame_of(tc) for tc in timecodes} - {0})

    def push(self, rgb: np.ndarray, pts: float) -> list[int]:
        self._last = self.clock.timecode(pts)
        found = self.detector.process_frame(self._last, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        value = self._score()
        self.score = 0.0 if len(self.clock.ticks) == 1 else value
        return self._frames(found)

    def finish(self) -> list[int]:
        if self._last is None:
            return []
        return self._frames(self.detector.post_process(self._last))


def _peaks(prob: np.ndarray, threshold: float) -> list[int]:
    """Index of the highest value of each run of values at or above ``threshold``."""
    above = np.flatnonzero(prob >= threshold)
    if above.size == 0:
        return []
    runs = np.split(above, np.flatnonzero(np.diff(above) > 1) + 1)
    return [int(run[np.argmax(prob[run])]) for run in runs]


class _MinGap:
    """Drops a cut closer than ``min_scene_len`` frames to the last one kept (the
    first of a close pair wins, as PySceneDetect's flash filter in suppress mode)."""

    def __init__(self, min_scene_len: int) -> None:
        self.min_len, self.last = min_scene_len, -(10 ** 9)

    def keep(self, cuts: list[int]) -> list[int]:
        out = []
        for cut in sorted(cuts):
            if cut > 0 and cut - self.last >= self.min_len:
                out.append(cut)
                self.last = cut
        return out


class TransNetStream(CutStream):
    """TransNetV2 on every frame, in the package's own windows (100 frames, step 50).

    The frames pushed are the package's padded sequence (``MARGIN`` copies of the first
    frame, then every frame); each full window predicts its middle ``STEP`` frames, and
    ``finish`` pads with the last frame as the package does, so the probabilities equal
    ``predict_frames``' (tested). The network marks the last frame of a shot: a peak at
    ``i`` is a cut at ``i + 1``. ``score`` is 0 here (probabilities come a window late);
    ``probs`` has every frame's once finished.
    """

    def __init__(self, params: CutsParams, net: TransNet | None = None) -> None:
        self.net = net or TransNet()
        self.threshold = params.net_threshold
        self.gap = _MinGap(params.min_scene_len)
        self.buffer: list[np.ndarray] = []  # padded-sequence frames from index ``done``
        self.pushed = 0
        self.probs: list[float] = []  # frames 0..done-1
        self.open_from = 0  # first frame not yet judged for peaks
        self.lookahead = WINDOW - MARGIN + 1

    def push(self, rgb: np.ndarray, pts: float) -> list[int]:
        small = net_input(rgb)
        if self.pushed == 0:
            self.buffer = [small] * MARGIN
        self.buffer.append(small)
        self.pushed += 1
        if len(self.buffer) < WINDOW:
            return []
        probs = self.net.predict_window(np.stack(self.buffer))[MARGIN:WINDOW - MARGIN]
        self.buffer = self.buffer[STEP:]
        return self._judge(probs, final=False)

    def finish(self) -> list[int]:
        new = len(self.buffer) - MARGIN  # frames with no probability yet
        probs = np.zeros(0, np.float32)
        if self.pushed and new > 0:
            need = 2 * MARGIN + STEP * math.ceil(new / STEP)
            block = np.stack(self.buffer + [self.buffer[-1]] * (need - len(self.buffer)))
            probs = np.concatenate([self.net.predict_window(block[s:s + WINDOW])[MARGIN:MARGIN + STEP]
                                    for s in range(0, need - WINDOW + 1, STEP)])[:new]
        self.buffer = []
        return self._judge(probs, final=True)

    def _judge(self, probs: np.ndarray, final: bool) -> list[int]:
        """Peaks of the runs that are closed (a run touching the newest frame may grow)."""
        self.probs += probs.tolist()
        values = np.asarray(self.probs[self.open_from:], np.float32)
        end = len(values)
        if not final:
            while end > 0 and values[end - 1] >= self.threshold:
                end -= 1
        cuts = [self.open_from + p + 1 for p in _peaks(values[:end], self.threshold)]
        self.open_from += end
        return self.gap.keep([c for c in cuts if c < self.pushed])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two grey images (NaN when either is flat).

    The same picture after a fade step, a flicker or a small move stays above ~0.9 at
    48x27; a new shot, even one of the same palette, falls to about 0 (measured on
    REAL_LIKE_SPEC: every hard cut <= 0.22).
    """
    x, y = a.astype(np.float32).ravel(), b.astype(np.float32).ravel()
    if x.size == 0:
        return math.nan
    x, y = x - x.mean(), y - y.mean()
    den = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / den if den > 0 else math.nan


# --- the kept share: does the next frame keep the picture's structure in place? -------
KEPT_SIZE = (96, 54)  # grey frame it is measured on (w, h; aspect squashed, as the net's)
KEPT_BLOCK = (8, 6)  # block (w, h): a 12 x 9 grid on a frame without bars
KEPT_TEXTURE = 4.0  # grey std of a block (or a whole line) with structure: under it, flat
KEPT_MATCH = 0.9  # normalised cross-correlation at which a block is kept
KEPT_SHIFT = 2.0  # px of KEPT_SIZE: a whole-frame shift up to this (weave, a slow pan) is undone
KEPT_MARGIN = 2  # px of KEPT_SIZE left out along each edge of the picture (gate edge, vignette)


def kept_grey(rgb: np.ndarray) -> np.ndarray:
    """The ``KEPT_SIZE`` grey frame (area-averaged, float32) :func:`kept_share` compares."""
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), KEPT_SIZE,
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def kept_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the picture's structure that frame ``b`` keeps, in place, from ``a``.

    ``a``, ``b``: :func:`kept_grey` frames. Bars are dropped (:func:`_inside_bars`), and
    ``KEPT_MARGIN`` px along each edge (a film scan's gate edge or vignette is the same
    in every shot). Of the ``KEPT_BLOCK`` blocks with structure in either frame (grey std
    at least ``KEPT_TEXTURE``), the share whose normalised cross-correlation with the
    same block of the other frame is at least ``KEPT_MATCH`` (a flicker or a fade step
    keeps a block: the correlation ignores gain and offset); the larger of that share
    as the frames are and with ``b``'s whole-frame shift undone (phase correlation, when
    at most ``KEPT_SHIFT`` px: film weave). 0 when nothing has structure (a blank frame).

    Why: a new shot replaces the whole picture, even in the same set or palette, while
    a big drawing change inside a shot (a wing flap at the camera, a character swooping
    close, fast action) leaves the background standing where the drawing does not
    cover it; frame-wide measures (grey correlation, colour histograms, the content
    score) cannot tell the two apart. Measured: the 12 real cuts of ``data/real/truth``
    and the 3 of the uncropped, pillarboxed Steamboat excerpt keep 0-0.013, the
    synthetic ones 0-0.10 (0.10: two backgrounds of the same diagonal stripes; the
    rest under 0.03); the same-shot candidates of the real clips
    that reach this test keep 0.07 (Popeye part 3 110: the wings fill the frame) and
    0.13-0.85 for the other 41. A block at a fixed place (no search per block) is what
    keeps chance matches rare: a search of +-1 px per block let striped and dotted
    synthetic backgrounds match across cuts (up to 0.34).
    """
    share = _kept_in_place(a, b)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F))
    if max(abs(dx), abs(dy)) <= KEPT_SHIFT and (dx or dy):
        back = cv2.warpAffine(b, np.float32([[1, 0, -dx], [0, 1, -dy]]), b.shape[::-1],
                              borderMode=cv2.BORDER_REPLICATE)
        share = max(share, _kept_in_place(a, back))
    return share


def _inside_bars(a: np.ndarray, b: np.ndarray) -> tuple[slice, slice]:
    """Rows, then columns, of the picture once bars are dropped.

    Dropped: the runs of edge rows (then, within the kept rows, edge columns) that are
    uniform in both frames (grey std along the line under ``KEPT_TEXTURE``), and next to
    each such run one line more (the downscale blends bar and picture there): letterbox
    and pillarbox bars. The stage crops bars before analysis, the video app does not;
    uncropped, a bar's edge would be structure kept across every cut, and its contrast
    makes any two frames correlate (0.83 and 0.91 across the two cuts of the
    pillarboxed Steamboat excerpt: both were missed before).
    """
    a, b = a.astype(np.float32), b.astype(np.float32)

    def span(flat_a: np.ndarray, flat_b: np.ndarray) -> slice:
        busy = np.flatnonzero((flat_a >= KEPT_TEXTURE) | (flat_b >= KEPT_TEXTURE))
        if busy.size == 0:
            return slice(0, 0)
        start, stop = int(busy[0]), int(busy[-1]) + 1
        start, stop = start + (start > 0), stop - (stop < len(flat_a))
        return slice(start, max(stop, start))

    rows = span(a.std(1), b.std(1))
    cols = span(a[rows].std(0), b[rows].std(0)) if rows.stop > rows.start else slice(0, 0)
    return rows, cols


def _blocks(img: np.ndarray) -> np.ndarray:
    """``img`` as ``KEPT_BLOCK`` blocks, one flattened block a row (leftover edges dropped)."""
    bw, bh = KEPT_BLOCK
    ny, nx = img.shape[0] // bh, img.shape[1] // bw
    return (img[:ny * bh, :nx * bw].reshape(ny, bh, nx, bw).transpose(0, 2, 1, 3)
            .reshape(ny * nx, bh * bw))


def _kept_in_place(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`kept_share` without the shift: blocks compared where they stand."""
    rows, cols = _inside_bars(a, b)
    m = KEPT_MARGIN
    rows = slice(rows.start + m, max(rows.stop - m, rows.start + m))
    cols = slice(cols.start + m, max(cols.stop - m, cols.start + m))
    x, y = _blocks(a[rows, cols]), _blocks(b[rows, cols])
    if x.size == 0:
        return 0.0
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    sx, sy = np.sqrt((x * x).mean(1)), np.sqrt((y * y).mean(1))
    structured = (sx >= KEPT_TEXTURE) | (sy >= KEPT_TEXTURE)
    if not structured.any():
        return 0.0
    ncc = (x * y).mean(1) / np.maximum(sx * sy, 1e-6)
    return float((ncc[structured] >= KEPT_MATCH).mean())


class CombinedStream(CutStream):
    """PySceneDetect proposes, the picture's structure and TransNetV2 decide.

    Every frame: PySceneDetect's content score (mean HSV change, ``ContentDetector``)
    on the network's own 48x27 input (area averaging removes most grain; ~0.1 ms a
    frame). A *spike* is a score ``spike_ratio`` times every score 2..``SPIKE_RADIUS``
    frames away on both sides (a look-alike cut between two static shots is small but
    stands out of its neighbours; a pan, a fade or a dissolve does not). A frame ``c``
    with a score of at least ``candidate_threshold``, standing out of at least one
    side, that is not a step into or out of a blank frame of a fade
    (:meth:`_fade_step`), is judged by what of ``c - 1`` it keeps, inside any bars
    (:func:`_inside_bars`): the grey correlation (:func:`correlation`, 48x27) and the
    kept share (:func:`kept_share`, the share of the picture's structure still in
    place, on 8x6 blocks of a 96x54 frame):

    - correlation at or above ``same_picture``: the same picture (a fade or dissolve
      step, a flicker, a small move): no cut;
    - kept share at or above ``same_shot_share``: the background stands where the
      drawing does not cover it: a big drawing change inside the shot (a bird flapping
      or swooping at the camera, fast action), no cut. Frame-wide measures call these
      cuts: the content score spikes, the correlation falls to 0.27-0.48 (the real
      cuts: -0.26 to 0.48), TransNetV2 gives the swoop 0.62 over the whole clip;
    - a spike under ``cut_correlation``: a different picture standing out of its
      neighbours: a cut, without asking the network, when its kept share is under
      ``related_share`` (nothing of the old picture left); when it keeps a little
      (at or above ``related_share``: a few blocks of background beside wings that
      fill the frame, or chance), only if TransNetV2 confirms it (:meth:`_confirmed`);
    - a spike whose picture stays half alike (a cut to a closer framing of the same
      set looks like this, and so does a big drawing step), or a frame that stands out
      of one side only (where the shot's rhythm changes: a look-alike cut out of a pan
      on twos, whose every step decorrelates the 48x27 frame, but also a pan starting):
      TransNetV2 decides (:meth:`_confirmed`) when the score is at least
      ``doubtful_threshold`` (drawing steps of real footage score 5-13 here and would
      cost a window each: the look-alike cuts score 15 and more);
    - anything else: no cut;

    then closer than ``min_scene_len`` to the previous cut, dropped. The network (and
    torch) is loaded on the first frame it is asked about, so most sources never pay
    for it. Lookahead: ``max(SPIKE_RADIUS, net_window // 2)`` frames.

    Measured (default params) on the hand-checked real clips (``data/real/truth``, PyAV
    decode order): 12 of 12 cuts, no false cut, no cut in either dissolve; before the
    kept share, 4 false cuts (precision 0.75), each a same-shot change the truth
    rejects: Popeye part 3 134 and 272 (the bird flaps, then swoops at the camera; kept
    0.31 and 0.30) and Copying 721 (fast action, a doubtful frame TransNetV2 gave 0.47;
    kept 0.30): no cut by the kept share; Popeye part 3 110 (the wings fill the frame,
    kept 0.07): TransNetV2 gives it 0.03 where it gives every true cut, real and
    synthetic, 0.40-0.999 in these windows. The real cuts keep 0-0.013, the synthetic
    ones 0-0.10. The same on those clips with bars added (12% letterbox, 12% pillarbox,
    5% both), and all 3 cuts of the uncropped pillarboxed Steamboat excerpt (none
    found before: the bars held the correlation at 0.83-0.91); synthetic sets: every
    cut, look-alike ones included, no false cut. Every setting from 0.12 to 0.2 of
    ``same_shot_share`` and from 0.015 to 0.06 of ``related_share`` gives that same
    result (0.1 of ``same_shot_share`` loses a synthetic cut between two striped
    backgrounds, 0.3 keeps the swoop; 0.1 of ``related_share`` keeps the wing flap; 0,
    asking the net about every spike, costs 8x the windows and loses two uncropped
    Steamboat cuts, which the net gives 0.04 and 0.15): the defaults sit mid-range.
    """

    SPIKE_RADIUS = 4
    UNIFORM_STD = 3.0  # grey std (48x27) of a blank frame: flash or the middle of a fade
    FADING = 0.7  # a fading frame keeps under this share of the contrast 1-3 frames back

    def __init__(self, params: CutsParams, net: TransNet | None = None) -> None:
        self.params = params
        self._net = net
        self.content = ContentDetector(threshold=255.0, min_scene_len=1)
        self.half = params.net_window // 2
        self.lookahead = max(self.SPIKE_RADIUS, self.half)
        keep = 2 * self.lookahead + 2
        self.small: deque[np.ndarray] = deque(maxlen=keep)  # the newest ``keep`` frames
        self.grey: deque[np.ndarray] = deque(maxlen=keep)
        self.kept: deque[np.ndarray] = deque(maxlen=keep)  # kept_grey of each
        self.scores: deque[float] = deque(maxlen=keep)
        self.contrast: deque[float] = deque(maxlen=keep)  # grey std of each
        self.pushed = 0
        self.decided = 1  # frame 0 is never a cut
        self.gap = _MinGap(params.min_scene_len)
        self.net_calls = 0
        self._probs = np.zeros(0, np.float32)  # the last window's probabilities,
        self._probs_from = 0  # ... from this frame on

    @property
    def net(self) -> TransNet:
        if self._net is None:
            self._net = TransNet()
        return self._net

    def push(self, rgb: np.ndarray, pts: float) -> list[int]:
        small = net_input(rgb)
        self.content.process_frame(FrameTimecode(self.pushed, fps=DEFAULT_RATE),
                                   cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        self.score = 0.0 if self.pushed == 0 else _as_float(self.content._frame_score)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        _, std = cv2.meanStdDev(grey)
        self.small.append(small)
        self.grey.append(grey)
        self.kept.append(kept_grey(rgb))
        self.scores.append(self.score)
        self.contrast.append(float(std[0, 0]))
        self.pushed += 1
        return self._decide_until(self.pushed - self.lookahead)

    def finish(self) -> list[int]:
        return self._decide_until(self.pushed)

    def _decide_until(self, end: int) -> list[int]:
        cuts = []
        while self.decided < end:
            if self._is_cut(self.decided):
                cuts.append(self.decided)
            self.decided += 1
        return self.gap.keep(cuts)

    def _at(self, values: deque[float], frame: int) -> float | None:
        """A buffered per-frame value by absolute frame index (None outside)."""
        offset = frame - (self.pushed - len(values))
        return values[offset] if 0 <= offset < len(values) else None

    def _score(self, frame: int) -> float:
        value = self._at(self.scores, frame)
        return 0.0 if value is None else value

    def _is_cut(self, c: int) -> bool:
        score = self._score(c)
        if score < self.params.candidate_threshold:
            return False
        before = max(self._score(c - d) for d in range(2, self.SPIKE_RADIUS + 1))
        after = max(self._score(c + d) for d in range(2, self.SPIKE_RADIUS + 1))
        bar = self.params.spike_ratio
        if score < bar * min(before, after) or self._fade_step(c):
            return False  # not even standing out of one side
        first = self.pushed - len(self.grey)
        before_grey, after_grey = self.grey[c - 1 - first], self.grey[c - first]
        rows, cols = _inside_bars(before_grey, after_grey)
        similar = correlation(before_grey[rows, cols], after_grey[rows, cols])
        if similar >= self.params.same_picture:  # NaN (a blank frame) compares False
            return False
        kept = kept_share(self.kept[c - 1 - first], self.kept[c - first])
        if kept >= self.params.same_shot_share:
            return False  # the background stays: a big drawing change inside the shot
        if score >= bar * max(before, after) and not similar >= self.params.cut_correlation:
            return kept < self.params.related_share or self._confirmed(c)
        if score < self.params.doubtful_threshold:
            return False  # a drawing step of moving footage: not worth a network window
        return not self._fading(c) and self._confirmed(c)

    def _fading(self, c: int) -> bool:
        """Whether ``c - 1`` or ``c`` has lost contrast against its own side (2..4 frames
        off): the frames of a fade, which TransNetV2 calls transitions too."""
        def side(frame: int, step: int) -> float:
            values = [self._at(self.contrast, frame + step * d) for d in range(1, self.SPIKE_RADIUS)]
            return max((v for v in values if v is not None), default=0.0)

        before, after = self._at(self.contrast, c - 1), self._at(self.contrast, c)
        assert before is not None and after is not None
        return before < self.FADING * side(c - 1, -1) or after < self.FADING * side(c, 1)

    def _fade_step(self, c: int) -> bool:
        """Whether c-1 -> c goes into or out of a blank frame from a fading picture.

        Hue is undefined near black and white, so the HSV score jumps there even in a
        smooth fade. A blank frame next to a picture of full contrast is a flash (a
        cut); next to a picture that had lost ``FADING`` of its contrast within 2
        frames, or next to another blank frame, it is the middle of a fade.
        """
        before, after = self._at(self.contrast, c - 1), self._at(self.contrast, c)
        if before is None or after is None or min(before, after) > self.UNIFORM_STD:
            return False
        if max(before, after) <= self.UNIFORM_STD:
            return True
        picture = c - 1 if before > after else c
        far = self._at(self.contrast, picture - 2 if picture == c - 1 else picture + 2)
        return far is not None and max(before, after) < self.FADING * far

    def _confirmed(self, c: int) -> bool:
        """TransNetV2's word on ``c``: the last frame of the old shot or the first of the
        new at ``confirm_threshold``, from a window of ``net_window`` frames around
        ``c`` (edge frames repeated at either end). A window's probabilities serve any
        later candidate in its middle half, so a run of doubtful frames (a pan whose
        steps all look like cuts at 48x27) costs one call per ``net_window // 2`` frames.
        """
        if not (self._probs_from + self.half // 2 <= c - 1
                and c < self._probs_from + len(self._probs) - self.half // 2):
            first = self.pushed - len(self.small)
            start = c - self.half
            index = np.clip(np.arange(start, c + self.half), first, self.pushed - 1) - first
            self._probs = self.net.predict_window(np.stack([self.small[i] for i in index]))
            self._probs_from = start
            self.net_calls += 1
        k = c - self._probs_from
        return float(self._probs[k - 1:k + 1].max()) >= self.params.confirm_threshold


def make_cut_stream(params: CutsParams, fps: float, net: TransNet | None = None) -> CutStream:
    """The :class:`CutStream` that ``cuts.detector`` names (``net``: a loaded network to
    share between sources, built on first use when None)."""
    if params.detector == "combined":
        return CombinedStream(params, net)
    if params.detector == "transnet":
        return TransNetStream(params, net)
    return SceneDetectStream(make_detector(params), fps)


class StreamDetector(SceneDetector):
    """A :class:`CutStream` behind PySceneDetect's ``SceneDetector`` interface.

    ``process_frame(timecode, bgr)`` pushes the frame (converted back to RGB) and
    returns the timecodes the stream's newly final cuts were pushed with;
    ``event_buffer_length`` is the stream's ``lookahead``, so a caller that holds frames
    that long (the video app's ``CutWindow``) marks every cut in time.
    """

    def __init__(self, stream: CutStream) -> None:
        super().__init__()
        self.stream = stream
        self.timecodes: deque[FrameTimecode] = deque(maxlen=stream.lookahead + 2)
        self.pushed = 0

    @property
    def event_buffer_length(self) -> int:
        return self.stream.lookahead

    def _timecodes(self, frames: list[int]) -> list[FrameTimecode]:
        first = self.pushed - len(self.timecodes)
        return [self.timecodes[f - first] for f in frames if f >= first]

    def process_frame(self, timecode: FrameTimecode, frame_img: np.ndarray) -> list[FrameTimecode]:
        self.timecodes.append(timecode)
        self.pushed += 1
        rgb = cv2.cvtColor(frame_img, cv2.COLOR_BGR2RGB)
        return self._timecodes(self.stream.push(rgb, float(timecode.seconds)))

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]:
        return self._timecodes(self.stream.finish())
