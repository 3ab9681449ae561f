"""Per-frame columns of one source, accumulated in decoding order: :class:`FrameFeatures`.

detect_cuts' worker ``add``s every decoded frame (analysis size, RGB) with its cut
score; ``arrays`` returns the ``frames.parquet`` columns (:data:`FRAME_COLUMNS`) as
typed arrays. The measures come from :class:`pipeline.analysis.measure.FrameMeter`, the
hold decision from :class:`pipeline.analysis.holds.HoldTracker` (it needs each drawing's
first frame, whose pixels no table keeps). By default one helper thread measures the
frames in order, overlapping decoding; the columns equal the inline path's.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.analysis.cadence import film_time
from pipeline.analysis.hashing import pil_grey
from pipeline.analysis.helper_thread import HelperThread
from pipeline.analysis.holds import HoldStep, HoldTracker, drawing_ids
from pipeline.analysis.measure import FrameMeter
from pipeline.core.config import TripletParams
from pipeline.media.video import Frame

# "str" is pandas' string dtype (what read_parquet gives back); "thumb" holds bytes.
FRAME_COLUMNS = {
    "source": "str", "frame": np.int64, "pts": np.float64, "scene": np.int32,
    "phash": np.uint64, "dhash": np.uint64, "luma_mean": np.float32,
    "luma_std": np.float32, "motion": np.float32, "score": np.float32, "thumb": object,
    # the hold rule's decision and its evidence (pipeline.analysis.holds): drawing id per source
    # (scenes not applied); change from the drawing's first frame in gates (> 1: new)
    "drawing": np.int64, "change": np.float32,
    # the frame's true time in film frames (pipeline.analysis.cadence.film_time): the frame number
    # but across an old conversion's repeats and drops; triplets take their t from it
    "time": np.float64,
}

class FrameFeatures:
    """Accumulates the per-frame columns of one source, one frame at a time.

    The hold decision is made here, in the decoding pass, because it compares each
    frame with its drawing's first frame (``pipeline.analysis.holds``), whose pixels no table
    keeps. ``holds`` are the hold rule's params (``triplets`` in params.yaml; the
    defaults when not given).

    Why a helper thread (``threaded``, the default): the measures cost 1.4-2 ms per
    analysis frame, about as much as decoding a 480p frame, and serial work cannot go
    much below that without changing the values (OpenCV's area resizes alone are
    ~0.3 ms). OpenCV, numpy's larger operations and the decoders release the GIL,
    so ``add`` only converts the frame to grey (which also copies it out of the
    reader's buffer) and queues it; one thread (``HelperThread``) measures the frames
    in order, so the columns are exactly those of the inline path (``threaded=False``).
    The queue is bounded (``QUEUE`` frames of ~50 kB); an error in the thread is raised
    by the next ``add`` or by ``arrays``, which waits for the thread to finish.
    """

    QUEUE = 8

    def __init__(self, thumb_size: int, holds: TripletParams | None = None,
                 threaded: bool = True) -> None:
        self.thumb_size = thumb_size
        self.cols: dict[str, list] = {k: [] for k in (
            "frame", "pts", "phash", "dhash", "luma_mean", "luma_std", "motion", "score")}
        self.thumbs = bytearray()
        self.meter = FrameMeter()
        self.hold_params = holds or TripletParams()
        self.holds = HoldTracker(self.hold_params)
        self.steps: list[HoldStep] = []
        self._grey = pil_grey
        self._helper = HelperThread(self._measure, self.QUEUE, "features") if threaded else None

    def add(self, frame: Frame, score: float) -> None:
        """Queue (or, inline, measure) one frame as grey, converted the way imagehash
        converts (PIL "L", bit for bit: ``pipeline.analysis.hashing.pil_grey``)."""
        item = (frame.index, frame.pts, score, self._grey(frame.rgb))
        if self._helper is None:
            self._measure(*item)
        else:
            self._helper.put(*item)

    def _measure(self, index: int, pts: float, score: float, grey: np.ndarray) -> None:
        """Every column of one frame from its grey image."""
        m = self.meter.measure(grey)
        thumb = cv2.resize(grey, (self.thumb_size, self.thumb_size), interpolation=cv2.INTER_AREA)
        for key, value in (("frame", index), ("pts", pts), ("phash", m.phash),
                           ("dhash", m.dhash), ("luma_mean", m.luma_mean), ("luma_std", m.luma_std),
                           ("motion", m.motion), ("score", score)):
            self.cols[key].append(value)
        self.thumbs += thumb.tobytes()
        self.steps.append(self.holds.push_grey(grey, (m.phash, m.dhash)))

    def arrays(self) -> dict[str, np.ndarray]:
        """Compact typed arrays (cheap to send back from the worker), once every queued
        frame is measured."""
        if self._helper is not None:
            self._helper.join()
        out = {k: np.asarray(v, dtype=FRAME_COLUMNS[k]) for k, v in self.cols.items()}
        out["drawing"] = drawing_ids(self.steps)
        out["change"] = np.asarray([s.change for s in self.steps], FRAME_COLUMNS["change"])
        # no cadence is known while decoding: the frame number, until analyse_one finds one
        out["time"] = film_time(len(out["frame"]), None)
        size = self.thumb_size * self.thumb_size
        out["thumb"] = np.frombuffer(bytes(self.thumbs), np.uint8).reshape(-1, size)
        return out
