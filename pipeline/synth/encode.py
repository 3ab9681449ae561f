"""Encoding: RGB frames -> a bit-exact constant-frame-rate H.264 MP4 via PyAV/libx264.

The same frames give the same bytes on every machine: ``fflags=+bitexact`` (no muxer
version string), one fixed x264 thread, and macroblock-tree rate control off
(``mbtree=0``). Timestamps are frame indices in a 1/fps time base, so pts * time_base
is exactly frame / fps (constant frame rate). ``fps`` may be a Fraction (a telecined
clip runs at fps * 5/4); an integer rate gives the same options, hence bytes, as it
always did. Why each setting, as measured: docs/NOTES.md.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import VideoReformatter

X264_THREADS = 1
X264_PRESET = "veryfast"


class H264Writer:
    """Writes frames to ``path`` (format forced to mp4, so temp names work).

    ``write(rgb, count)`` converts a drawing to yuv420p once and encodes it ``count``
    times, which is how held drawings are made cheap.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int | Fraction, crf: int) -> None:
        rate = Fraction(fps)
        keyint = max(1, round(2 * rate))
        self.container = av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"})
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = 1 / rate
        self.stream.codec_context.time_base = 1 / rate
        self.stream.codec_context.gop_size = keyint
        self.stream.options = {
            "crf": str(crf),
            "preset": X264_PRESET,
            "threads": str(X264_THREADS),
            "x264-params": f"keyint={keyint}:min-keyint={max(1, int(rate // 2))}:mbtree=0",
        }
        self.frames = 0
        # one reformatter keeps its swscale context: a new one per frame costs ~2 ms at 256 x 192
        self.reformatter = VideoReformatter()

    def write(self, rgb: np.ndarray, count: int = 1) -> None:
        """Append ``count`` frames showing ``rgb`` (H x W x 3 uint8)."""
        frame = self.reformatter.reformat(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p")
        for _ in range(count):
            self.encode(frame)

    def encode(self, frame: av.VideoFrame) -> None:
        """Append one yuv420p frame as the next frame (its own pts is replaced)."""
        if frame.time_base is not None:  # a filter graph's frame: PyAV would rescale its pts
            frame.time_base = self.stream.codec_context.time_base
        frame.pts = self.frames
        self.frames += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.container.close()
