"""PySceneDetect, as detect_cuts (and the video app) drive it: frames fed in, never a file.

- :func:`make_detector`: the detector object that ``cuts.detector`` names, built from
  :class:`~pipeline.config.CutsParams`;
- :func:`score_reader`: the detector's score for the frame it last processed;
- :class:`DetectorClock`: frame pts -> the strictly increasing timecodes detectors
  expect (``TICKS_PER_SECOND`` ticks a second), and a reported cut back to its frame.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from fractions import Fraction

from scenedetect.common import FrameTimecode, Timecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
)
from scenedetect.stats_manager import StatsManager

from pipeline.config import CutsParams

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
    """The PySceneDetect detector object named by ``cuts.detector``."""
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
