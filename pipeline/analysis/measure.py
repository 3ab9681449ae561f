"""The per-frame measure, one for the detect_cuts stage and for ``interpolate``'s stream.

:class:`FrameMeter` turns consecutive grey frames (PIL "L", analysis size: see
:func:`pipeline.analysis.hashing.pil_grey`) into the columns ``frames.parquet`` keeps:
perceptual hashes, luma mean and spread, and the mean absolute change from the previous
frame. The hold rule is fed by the same frame (:meth:`pipeline.analysis.holds.HoldTracker.
push_grey`), so the stage and the app decide holds and cuts from identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.analysis.hashing import frame_hashes


@dataclass(frozen=True)
class FrameMeasures:
    """One frame's measures; ``motion`` is 0 for the first frame of a stream."""

    phash: int
    dhash: int
    luma_mean: float
    luma_std: float
    motion: float


class FrameMeter:
    """Measures frames in order; keeps only the previous grey frame."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None

    def measure(self, grey: np.ndarray) -> FrameMeasures:
        """The measures of the next frame (``grey``: uint8, analysis size)."""
        phash, dhash = frame_hashes(grey)
        mean, std = cv2.meanStdDev(grey)
        motion = 0.0 if self.prev is None else cv2.mean(cv2.absdiff(grey, self.prev))[0]
        self.prev = grey
        return FrameMeasures(phash, dhash, mean[0, 0], std[0, 0], motion)
