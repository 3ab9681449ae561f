"""One video-reader interface, two backends: decord and PyAV.

Every stage that decodes goes through :func:`open_reader`, which streams
:class:`Frame` objects (index, presentation time, RGB at a reduced size) one at a time,
so memory does not grow with the video's length.

Why two backends, and why "auto" picks PyAV (numbers from ``benchmarks/
bench_detect_cuts.py`` and the notes in the detect_cuts issue, 2-core machine):

- decord 0.6.0 decodes H.264 and HEVC, VP9 only with 1-2 threads, and not AV1 or GIF.
  It hangs for ever when asked for a frame past the real end of a file whose header
  over-reports its frame count, and leaks memory on long files.
- PyAV decodes every codec FFmpeg knows and was faster on every file measured: with
  one reused ``VideoReformatter`` (area scaling) it decodes the 320x240 H.264 synthetic
  clips at analysis size (256x192) at 1290-1380 frames/s vs 860-1150 for decord, and
  the 1440x1074 HEVC Popeye clip at short side 192 at 223 vs 188 frames/s (CPU time:
  165 vs 148). Creating a scaler per frame (``to_ndarray(width=...)``) would cost PyAV
  ~3x on the small clips.

So ``backend="auto"`` reads with PyAV; decord stays available (``backend="decord"``,
params ``cuts.reader``) for the codecs it handles, guarded the way the notes demand:
it never indexes past ``min(len(vr), frames)`` where ``frames`` is the demux count
from the probe, and it falls back to PyAV when it cannot open or decode the first
frames, when the codec is one it mishandles, or when its index has fewer frames than
the demux found.

A decode error partway ends the iteration, keeps what decoded and is exposed as
``reader.error`` (never raised): the caller decides whether a partial file is useful.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal

import av
import decord
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from pipeline import probe
from pipeline.errors import ReasonError

log = logging.getLogger("inbetweener.video")

Backend = Literal["auto", "decord", "pyav"]

# Codecs decord decodes correctly (measured, see module doc) and the thread count each
# needs; 0 lets decord choose. VP9 fails after ~10 frames with decord's default threads.
DECORD_CODECS: dict[str, int] = {"h264": 0, "hevc": 0, "vp9": 2}
# What "auto" uses per codec; anything not listed reads with PyAV. Empty because PyAV
# measured at least as fast as decord on every codec decord handles (module doc); a
# machine where decord wins would list e.g. {"hevc": "decord"} here.
AUTO_BACKEND: dict[str, str] = {}
DECORD_BATCH = 16  # frames per get_batch: ~2.4 MB at 258x192, amortises the call


class ReaderError(ReasonError):
    """No backend could open the file; ``reason`` is short and goes into a table."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: position in presentation order, time in seconds, pixels."""

    index: int
    pts: float
    rgb: np.ndarray  # H x W x 3 uint8, at the reader's analysis size


@dataclass(frozen=True)
class StreamInfo:
    """What the container header says about the video stream (cheap to read)."""

    codec: str
    width: int
    height: int
    fps: float
    time_base: Fraction | None


def _even(value: float) -> int:
    """Nearest even integer, at least 2 (yuv/rgb scalers and codecs like even sides)."""
    return max(2, int(round(value / 2.0)) * 2)


def analysis_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side at ``short_side``, aspect kept, both sides even.

    Never upscales: a source smaller than ``short_side`` keeps its size (rounded down
    to even sides), because upscaling adds no information and costs time.
    """
    if width <= 0 or height <= 0 or short_side <= 0:
        raise ValueError(f"bad size {width}x{height} / short side {short_side}")
    scale = min(1.0, short_side / min(width, height))
    if scale >= 1.0:
        return max(2, width - width % 2), max(2, height - height % 2)
    return _even(width * scale), _even(height * scale)


# decord prefixes its messages with a wall-clock time and a source location, e.g.
# "[02:05:01] /github/workspace/src/video/video_reader.cc:270: "; tables get the rest.
_DECORD_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def _message(err: BaseException) -> str:
    """A one-line, reproducible reason from any backend exception."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = _DECORD_PREFIX.sub("", " ".join(text.split()))
    return text[:300]


def main_stream(container: av.container.InputContainer) -> av.VideoStream:
    """The stream ``pipeline.probe`` counted frames of (cover art never is one)."""
    try:
        return probe.main_stream(container)
    except probe.ProbeError as err:
        raise ReaderError(err.reason) from None


def stream_info(path: str | Path) -> StreamInfo:
    """Read codec, size, rate and time base from the header (PyAV; no decoding)."""
    try:
        with av.open(str(path)) as container:
            stream = main_stream(container)
            ctx = stream.codec_context
            if ctx is None:
                raise ReaderError("unsupported codec: FFmpeg has no decoder")
            rate = stream.average_rate or stream.guessed_rate
            return StreamInfo(ctx.codec.canonical_name, ctx.width, ctx.height,
                              float(rate) if rate else 0.0,
                              Fraction(stream.time_base) if stream.time_base else None)
    except (av.FFmpegError, OSError) as err:
        raise ReaderError(f"cannot open: {_message(err)}") from err


class VideoReader(ABC):
    """Streams the frames of one video at a fixed size; a context manager.

    Subclasses yield ``(pts, rgb)`` pairs from :meth:`_decode` and list the exceptions
    that mean "the file is bad" in ``decode_errors``; anything else is a bug and
    propagates. ``error`` is "" until a decode error ends the iteration.
    """

    name: ClassVar[str]
    decode_errors: ClassVar[tuple[type[BaseException], ...]]

    def __init__(self, path: Path, size: tuple[int, int], info: StreamInfo) -> None:
        self.path, self.size, self.info = path, size, info
        self.error = ""
        self.note = ""  # set by open_reader when it had to fall back to this backend
        self.frames_read = 0

    @abstractmethod
    def _decode(self) -> Iterator[tuple[float | None, np.ndarray]]:
        """Yield (pts seconds or None, H x W x 3 uint8) in presentation order."""

    def close(self) -> None:
        """Release the backend's resources (idempotent)."""

    def __iter__(self) -> Iterator[Frame]:
        last = None
        step = 1.0 / self.info.fps if self.info.fps > 0 else 0.0
        try:
            for pts, rgb in self._decode():
                if pts is None:  # no timestamp: continue from the last one at the header rate
                    pts = 0.0 if last is None else last + step
                last = pts
                yield Frame(self.frames_read, float(pts), rgb)
                self.frames_read += 1
        except self.decode_errors as err:
            self.error = f"decode failed after {self.frames_read} frames: {_message(err)}"

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class PyAVReader(VideoReader):
    """FFmpeg through PyAV: every codec, exact container timestamps (VFR-safe).

    One ``VideoReformatter`` is reused for all frames: creating a scaler per frame
    (what ``frame.reformat``/``to_ndarray(width=...)`` do) costs more than decoding
    small H.264. Area interpolation gives alias-free thumbnails for hashing.
    """

    name = "pyav"
    decode_errors = (av.FFmpegError, OSError)

    def __init__(self, path: Path, size: tuple[int, int], info: StreamInfo) -> None:
        super().__init__(path, size, info)
        try:
            self.container = av.open(str(path))
        except (av.FFmpegError, OSError) as err:
            raise ReaderError(f"cannot open: {_message(err)}") from err
        try:
            self.stream = main_stream(self.container)
        except ReaderError:
            self.container.close()
            raise
        self.stream.thread_type = "AUTO"
        self.scaler = VideoReformatter()

    def _decode(self) -> Iterator[tuple[float | None, np.ndarray]]:
        width, height = self.size
        for frame in self.container.decode(self.stream):
            out = self.scaler.reformat(frame, width=width, height=height, format="rgb24",
                                       interpolation=Interpolation.AREA)
            yield frame.time, out.to_ndarray()

    def close(self) -> None:
        self.container.close()


class DecordReader(VideoReader):
    """decord: sequential ``get_batch`` over indices it is known to have.

    Reads at most ``min(len(vr), frames)`` frames (``frames`` = the probe's demux
    count), so a header that over-reports can never send it past the end, where it
    hangs. Its float32 timestamps are snapped to the stream's time base to give the same
    seconds as PyAV. The first batch is decoded at open time, so that a codec decord
    cannot handle is found while falling back to PyAV is still free.
    """

    name = "decord"
    decode_errors = (decord.DECORDError, RuntimeError)

    def __init__(self, path: Path, size: tuple[int, int], info: StreamInfo,
                 frames: int | None) -> None:
        super().__init__(path, size, info)
        threads = DECORD_CODECS.get(info.codec, 0)
        try:
            self.vr = decord.VideoReader(str(path), width=size[0], height=size[1],
                                         num_threads=threads)
        except self.decode_errors as err:
            raise ReaderError(f"decord: {_message(err)}") from err
        if frames is not None and len(self.vr) < frames:
            raise ReaderError(f"decord: index has {len(self.vr)} frames, demux found {frames}")
        self.count = len(self.vr) if frames is None else min(len(self.vr), frames)
        try:
            self.first = self._batch(0) if self.count else None
        except self.decode_errors as err:
            raise ReaderError(f"decord: {_message(err)}") from err

    def _batch(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames [start, start + DECORD_BATCH) within the trusted count, with pts."""
        idx = list(range(start, min(self.count, start + DECORD_BATCH)))
        rgb = self.vr.get_batch(idx).asnumpy()
        return rgb, self._snap(self.vr.get_frame_timestamp(idx)[:, 0])

    def _snap(self, seconds: np.ndarray) -> np.ndarray:
        """float32 seconds -> the nearest tick of the stream time base, as float64."""
        tb = self.info.time_base
        if not tb:
            return seconds.astype(np.float64)
        ticks = np.round(seconds.astype(np.float64) / float(tb))
        return ticks * tb.numerator / tb.denominator

    def _decode(self) -> Iterator[tuple[float | None, np.ndarray]]:
        start, batch = 0, self.first
        while batch is not None:
            rgb, pts = batch
            for k in range(len(rgb)):
                yield float(pts[k]), rgb[k]
            start += len(rgb)
            batch = self._batch(start) if start < self.count else None

    def close(self) -> None:
        self.vr = None  # decord frees on garbage collection; drop our reference


def choose_backend(codec: str, backend: Backend = "auto") -> str:
    """The backend to try first: an explicit choice, or the measured best per codec."""
    if backend != "auto":
        return backend
    return AUTO_BACKEND.get(codec, "pyav")


def _header(path: Path) -> StreamInfo:
    """The stream's header facts, or ReaderError for files no backend can use."""
    if not path.is_file():
        raise ReaderError("no such file")
    if path.stat().st_size == 0:
        raise ReaderError("empty file")
    info = stream_info(path)
    if info.width <= 0 or info.height <= 0:
        raise ReaderError(f"zero size: {info.width}x{info.height}")
    return info


def _open_decord(path: Path, size: tuple[int, int], info: StreamInfo, codec: str,
                 frames: int | None) -> tuple[VideoReader | None, str]:
    """A DecordReader, or None and why PyAV has to read this file instead."""
    if codec not in DECORD_CODECS:
        return None, f"decord does not decode {codec}; read with pyav"
    try:
        return DecordReader(path, size, info, frames), ""
    except ReaderError as err:
        return None, f"{err.reason}; read with pyav"


def open_reader(path: str | Path, short_side: int, backend: Backend = "auto",
                codec: str | None = None, frames: int | None = None) -> VideoReader:
    """Open ``path`` for streaming at short side ``short_side``; see the module doc.

    ``codec`` and ``frames`` come from ``sources.parquet`` (the probe); ``frames`` is
    the demux count, which bounds decord. Raises :class:`ReaderError` when no backend
    can open the file. ``reader.name`` tells which backend is actually used, and
    ``reader.note`` why decord was not, when it was asked for.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown reader backend {backend!r}: expected auto, decord or pyav")
    path = Path(path)
    info = _header(path)
    size = analysis_size(info.width, info.height, short_side)
    codec = codec or info.codec
    note = ""
    if choose_backend(codec, backend) == "decord":
        reader, note = _open_decord(path, size, info, codec, frames)
        if reader is not None:
            return reader
        log.info("%s: %s", path.name, note)
    reader = PyAVReader(path, size, info)
    reader.note = note
    return reader
