"""The detect_cuts worker: one source decoded once, in a guarded child process.

:func:`analyse_source` streams a :class:`SourceJob`'s frames at analysis size through its
recorded decode filter, feeds them to the ``cuts.detector`` stream and to
:class:`pipeline.analysis.features.FrameFeatures` (on helper threads while the main
thread decodes: ``THREADS``, same results as inline), and returns an :class:`Analysis`:
the per-frame columns, the cut frames and how decoding went (reader, error, note). The
parent side (status rules, tables, parts) is :mod:`pipeline.analysis.analyse`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.analysis.detectors import CutStream, make_cut_stream
from pipeline.analysis.features import FrameFeatures
from pipeline.analysis.helper_thread import HelperThread
from pipeline.core.config import CutsParams, TripletParams
from pipeline.media.decode_filter import (
    NO_FILTER,
    DecodeFilter,
)
from pipeline.media.video import (
    Frame,
    ReaderError,
    VideoReader,
    open_reader,
)

log = logging.getLogger("inbetweener.detect_cuts")

# Imported once by the worker processes' fork server (see pipeline.core.guard), so that a
# worker starts in milliseconds. Not this module itself: under ``python -m`` every
# worker re-runs it as ``__mp_main__``, and runpy warns if it is already imported.
PRELOAD = ("numpy", "pandas", "cv2", "PIL.Image", "scipy.fftpack", "scenedetect.detectors",
           "pipeline.core.config", "pipeline.analysis.detectors", "pipeline.core.guard", "pipeline.analysis.hashing",
           "pipeline.media.video", "pipeline.analysis.holds")


@dataclass(frozen=True)
class SourceJob:
    """One source to analyse, as the worker needs it (picklable)."""

    name: str
    path: str  # absolute
    codec: str
    frames: int  # the probe's demux count
    fps: float  # of the frames the reader delivers (after the decode filter)
    backend: str  # "auto" | "decord" | "pyav"
    decode: DecodeFilter = NO_FILTER  # recorded by the download stage (pipeline.media.scan)
    out_frames: int = 0  # frames the decode filter should deliver (0: ``frames``)
    holds: TripletParams | None = None  # the hold rule's params (``triplets``; None: defaults)

    @property
    def expected(self) -> int:
        """Frames a whole decode gives: fewer than ``frames`` after 3:2 decimation."""
        return self.out_frames or self.frames


@dataclass
class Analysis:
    """What a worker sends back: per-frame columns, cut frames, and how decoding went."""

    reader: str = ""
    error: str = ""  # why decoding stopped early (or never started)
    note: str = ""  # why the reader asked for was not used
    opened: bool = False
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    cuts: list[int] = field(default_factory=list)  # first frames of new scenes

    @property
    def frames(self) -> int:
        return len(self.columns.get("frame", ()))


# Helper threads of the analysis pass (``_detect``): 2, the cut stream on one and the
# features measured on another, while the worker's main thread decodes; ~150-200 kB a
# frame queued, so ``ANALYSIS_QUEUE`` holds a decord batch (16 frames) and then some.
THREADS = 2
ANALYSIS_QUEUE = 32

# The per-source function run in a worker process (tests inject misbehaving ones).
Worker = Callable[[SourceJob, CutsParams], Analysis]


def _detect(reader: VideoReader, stream: CutStream, params: CutsParams,
            holds: TripletParams | None = None,
            threads: int = THREADS) -> tuple[FrameFeatures, list[int]]:
    """The single decoding pass: the cut stream and the features fed the same frames.

    ``stream`` is the object the video app drives too (:mod:`pipeline.analysis.detectors`), so
    the stage and ``interpolate`` find the same cuts. ``threads`` (see ``THREADS``): 0,
    all inline; 1, the stream and the features on one helper thread, the decoding
    thread only decodes; 2, the features measured on a second one. Same columns and
    cuts whichever: each thread takes the frames in decoding order.
    """
    features = FrameFeatures(params.thumb_size, holds, threaded=threads >= 2)
    cuts: list[int] = []

    def analyse(frame: Frame) -> None:
        cuts.extend(stream.push(frame.rgb, frame.pts))
        features.add(frame, stream.score)

    if threads <= 0:
        for frame in reader:
            analyse(frame)
    else:
        helper = HelperThread(analyse, ANALYSIS_QUEUE, "analysis")
        try:
            for frame in reader:
                helper.put(frame)
        finally:
            helper.join()
    cuts += stream.finish()
    return features, sorted(set(cuts) - {0})


def analyse_source(job: SourceJob, params: CutsParams, threads: int = THREADS) -> Analysis:
    """Worker body for one source: open, decode once, detect, measure (see module doc;
    ``threads``: how the work is spread, as ``_detect`` says)."""
    result = Analysis()
    try:
        reader = open_reader(job.path, params.analysis_size, job.backend,  # type: ignore[arg-type]
                             codec=job.codec or None, frames=job.frames or None,
                             decode=job.decode)
    except ReaderError as err:
        result.error = err.reason
        return result
    with reader:
        features, result.cuts = _detect(reader, make_cut_stream(params, job.fps), params,
                                        job.holds, threads)
    result.opened, result.reader = True, reader.name
    result.error, result.note = reader.error, reader.note
    result.columns = features.arrays()
    return result
