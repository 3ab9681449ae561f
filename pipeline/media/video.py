"""One video-reader interface, two backends: decord and PyAV.

Every decode goes through :func:`open_reader` (detect_cuts at analysis size, the
interpolate command at full size) or :func:`read_frames` (the shard stage: only the kept
triplets' frames, at the stored size, in one sequential pass). A reader streams
:class:`Frame` objects (index, presentation time, RGB at the reader's size) one at a
time from ``pipeline.media.probe.main_stream``, through the source's recorded decode
filter (``decode=``, :mod:`pipeline.media.scan`), so a frame index is a position among
the *output* frames everywhere; with no filter the decode is the plain path, byte for
byte. ``backend="auto"`` reads each codec with the reader measured faster
(``AUTO_MEASURED``: PyAV so far); decord reads only where :func:`decord_refusal` allows
(never with a filter), never past the demux count, and falls back to PyAV on trouble. A
decode error partway ends the iteration, keeps what decoded and sets ``reader.error``
(never raised); a filter FFmpeg cannot build is noted, the source decoded unfiltered.
Measurements: docs/NOTES.md.
"""

from __future__ import annotations

import bisect
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal

import av
import decord
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from pipeline.core.errors import ReasonError
from pipeline.media import probe
from pipeline.media.decode_filter import NO_FILTER, DecodeFilter, FilterGraph, filtered

log = logging.getLogger("inbetweener.video")

Backend = Literal["auto", "decord", "pyav"]

# Codecs decord decodes correctly (measured, see module doc) and the thread count each
# needs; 0 lets decord choose. VP9 fails after ~10 frames with decord's default threads.
DECORD_CODECS: dict[str, int] = {"h264": 0, "hevc": 0, "vp9": 2}
# What "auto" reads each codec with follows this table, not habit: the analysis pass's
# frames/s, wall and CPU, of each reader at short side 192, as
# ``benchmarks/bench_detect_cuts.py`` prints them (its "auto" line; same run, 2-core
# shared machine, default threads; the 480p-and-up clip of each codec). decord is
# chosen only where it is faster by ``AUTO_MARGIN`` on both: its bicubic scaler gives
# other pixels than PyAV's area scaling, so a switch changes every analysis table of the
# codec. Not listed (vp8, vp9, av1, gif...): PyAV. Measured 2026-12-06 (docs/NOTES.md).
AUTO_MEASURED: dict[str, dict[str, tuple[float, float]]] = {
    "h264": {"pyav": (225.0, 225.0), "decord": (280.0, 223.0)},  # 574x480 Steamboat crop
    "hevc": {"pyav": (207.0, 161.0), "decord": (79.0, 136.0)},  # 1440x1074 Popeye
}
AUTO_MARGIN = 1.10


def auto_backends(measured: dict[str, dict[str, tuple[float, float]]],
                  margin: float = AUTO_MARGIN) -> dict[str, str]:
    """codec -> "decord" where decord's (wall, CPU) frames/s both beat PyAV's by ``margin``."""
    return {codec: "decord" for codec, fps in measured.items()
            if all(d >= margin * p for d, p in zip(fps["decord"], fps["pyav"], strict=True))}


AUTO_BACKEND: dict[str, str] = auto_backends(AUTO_MEASURED)
DECORD_BATCH = 16  # frames per get_batch: ~2.4 MB at 258x192, amortises the call


class ReaderError(ReasonError):
    """No backend could open the file; ``reason`` is short and goes into a table."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: position in presentation order, time in seconds, pixels."""

    index: int
    pts: float
    rgb: np.ndarray  # H x W x 3 uint8, at the reader's size


@dataclass(frozen=True)
class StreamInfo:
    """What the container header says about the main video stream (cheap to read)."""

    codec: str
    width: int
    height: int
    fps: float
    time_base: Fraction | None
    index: int = 0  # of the main stream among the container's streams
    video_streams: int = 1  # in the container, attached pictures (cover art) included
    pictures: int = 0  # of those, attached pictures


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
    """The stream ``pipeline.media.probe`` counted frames of (cover art never is one)."""
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
            video = container.streams.video
            pictures = sum(1 for s in video if s.disposition & av.stream.Disposition.attached_pic)
            return StreamInfo(ctx.codec.canonical_name, ctx.width, ctx.height,
                              float(rate) if rate else 0.0,
                              Fraction(stream.time_base) if stream.time_base else None,
                              stream.index, len(video), pictures)
    except (av.FFmpegError, OSError) as err:
        raise ReaderError(f"cannot open: {_message(err)}") from err


def decord_refusal(info: StreamInfo, codec: str, frames: int | None,
                   decode: DecodeFilter = NO_FILTER) -> str:
    """Why decord may not read this file, or "" when it may: the one place that decides.

    decord must decode the codec correctly (``DECORD_CODECS``) and must read the main
    stream, which it cannot be told: it takes FFmpeg's "best" video stream (and its own
    FFmpeg build's idea of it). That is certain only when the main stream is the only
    video stream, or when the others are attached pictures (one frame each) and the
    demux count ``frames`` is at least 2: :class:`DecordReader` refuses an index shorter
    than the count, so decord having picked a picture cannot go unnoticed. decord runs
    no FFmpeg filter of ours, so a source with an active ``decode`` filter is refused.
    """
    if decode.active:
        what = "crop" if not decode.reorders_fields else f"{decode.scan} filters"
        return f"decord cannot run the {what} this source needs"
    if codec not in DECORD_CODECS:
        return f"decord does not decode {codec}"
    others = info.video_streams - 1 - info.pictures
    if others > 0:
        return f"{info.video_streams} video streams and decord cannot choose the main one"
    if info.pictures and (frames or 0) < 2:
        return "an attached picture, and no demux count to tell decord's stream from it"
    return ""


class VideoReader(ABC):
    """Streams the frames of one video's main stream at a fixed size; a context manager.

    Iterating gives every frame in presentation order; :meth:`read` gives only wanted
    ones. Subclasses yield ``(index, pts, rgb)`` from :meth:`_decode` and list the
    exceptions that mean "the file is bad" in ``decode_errors``; anything else is a bug
    and propagates. ``error`` is "" until a decode error ends the iteration.
    """

    name: ClassVar[str]
    decode_errors: ClassVar[tuple[type[BaseException], ...]]

    def __init__(self, path: Path, size: tuple[int, int], info: StreamInfo,
                 decode: DecodeFilter = NO_FILTER) -> None:
        self.path, self.size, self.info, self.decode = path, size, info, decode
        self.error = ""
        self.note = ""  # set by open_reader when it had to fall back to this backend
        self.frames_read = 0

    @abstractmethod
    def _decode(self, wanted: Sequence[int] | None
                ) -> Iterator[tuple[int, float | None, np.ndarray]]:
        """Yield (index, pts seconds or None, H x W x 3 uint8) in presentation order.

        ``wanted`` None: every frame. Otherwise sorted unique indices: only those
        frames are converted and yielded, and decoding stops after the last one.
        """

    def close(self) -> None:
        """Release the backend's resources (idempotent)."""

    def __iter__(self) -> Iterator[Frame]:
        return self.read()

    def read(self, wanted: Iterable[int] | None = None) -> Iterator[Frame]:
        """Every frame, or only the ``wanted`` indices (any order; yielded in increasing
        order). A missing timestamp continues from the last one at the header rate."""
        todo = None if wanted is None else sorted({int(i) for i in wanted if int(i) >= 0})
        last: tuple[int, float] | None = None
        fps = self.decode.out_fps(self.info.fps)
        step = 1.0 / fps if fps > 0 else 0.0
        try:
            for index, pts, rgb in self._decode(todo):
                if pts is None:
                    pts = 0.0 if last is None else last[1] + (index - last[0]) * step
                last = (index, float(pts))
                yield Frame(index, float(pts), rgb)
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
    small H.264. Area interpolation gives alias-free thumbnails for hashing. Frames
    that are not wanted are decoded (the pass is sequential) but never converted.
    """

    name = "pyav"
    decode_errors = (av.FFmpegError, OSError)

    def __init__(self, path: Path, size: tuple[int, int], info: StreamInfo,
                 decode: DecodeFilter = NO_FILTER) -> None:
        super().__init__(path, size, info, decode)
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
        self.graph = self._graph() if decode.active else None

    def _graph(self) -> FilterGraph:
        """The decode filter's graph, built at open so a bad one is found here."""
        try:
            return FilterGraph(self.stream, self.decode.chain())
        except (av.FFmpegError, ValueError) as err:
            self.container.close()
            raise ReaderError(f"decode filter {self.decode.chain()}: {_message(err)}") from err

    def _frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames, through the decode filter when there is one."""
        decoded = self.container.decode(self.stream)
        return decoded if self.graph is None else filtered(decoded, self.graph)

    def _decode(self, wanted: Sequence[int] | None
                ) -> Iterator[tuple[int, float | None, np.ndarray]]:
        if wanted is not None and not wanted:
            return
        width, height = self.size
        keep, last = (None, None) if wanted is None else (set(wanted), wanted[-1])
        for index, frame in enumerate(self._frames()):
            if keep is None or index in keep:
                out = self.scaler.reformat(frame, width=width, height=height, format="rgb24",
                                           interpolation=Interpolation.AREA)
                yield index, frame.time, out.to_ndarray()
            if last is not None and index >= last:
                return

    def close(self) -> None:
        self.container.close()


class DecordReader(VideoReader):
    """decord: ``get_batch`` on sorted batches of indices it is known to have.

    Reads at most ``min(len(vr), frames)`` frames (``frames`` = the probe's demux
    count), so a header that over-reports can never send it past the end, where it
    hangs. Its float32 timestamps are snapped to the stream's time base to give the same
    seconds as PyAV. The first batch is decoded at open time, so that a codec decord
    cannot handle is found while falling back to PyAV is still free. Only open it
    where :func:`decord_refusal` has no objection (:func:`open_reader` does that).
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
        try:  # frames 0..n-1, kept for the first read: every read decodes them anyway
            self.first = self._batch(list(range(min(self.count, DECORD_BATCH))))
        except self.decode_errors as err:
            raise ReaderError(f"decord: {_message(err)}") from err

    def _batch(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """RGB and pts of ``indices`` (sorted, within the trusted count)."""
        if not indices:
            return np.zeros((0, self.size[1], self.size[0], 3), np.uint8), np.zeros(0)
        rgb = self.vr.get_batch(indices).asnumpy()
        return rgb, self._snap(self.vr.get_frame_timestamp(indices)[:, 0])

    def _snap(self, seconds: np.ndarray) -> np.ndarray:
        """float32 seconds -> the nearest tick of the stream time base, as float64."""
        tb = self.info.time_base
        if not tb:
            return seconds.astype(np.float64)
        ticks = np.round(seconds.astype(np.float64) / float(tb))
        return ticks * tb.numerator / tb.denominator

    def _decode(self, wanted: Sequence[int] | None
                ) -> Iterator[tuple[int, float | None, np.ndarray]]:
        todo = range(self.count) if wanted is None else [i for i in wanted if i < self.count]
        (rgb, pts), self.first = self.first, (np.zeros(0), np.zeros(0))  # for one read only
        head = bisect.bisect_left(todo, len(rgb))  # the wanted frames decoded at open
        for index in todo[:head]:
            yield index, float(pts[index]), rgb[index]
        rest = todo[head:]
        for start in range(0, len(rest), DECORD_BATCH):
            batch = list(rest[start:start + DECORD_BATCH])
            rgb, pts = self._batch(batch)
            for k, index in enumerate(batch):
                yield index, float(pts[k]), rgb[k]

    def close(self) -> None:
        self.vr = None  # decord frees on garbage collection; drop our reference


def choose_backend(codec: str, backend: Backend = "auto") -> str:
    """The backend to try first: an explicit choice, or the measured best per codec
    (``AUTO_BACKEND``, from the ``AUTO_MEASURED`` table)."""
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
                 frames: int | None, decode: DecodeFilter) -> tuple[VideoReader | None, str]:
    """A DecordReader, or None and why PyAV has to read this file instead."""
    refusal = decord_refusal(info, codec, frames, decode)
    if refusal:
        return None, f"{refusal}; read with pyav"
    try:
        return DecordReader(path, size, info, frames), ""
    except ReaderError as err:
        return None, f"{err.reason}; read with pyav"


def open_reader(path: str | Path, short_side: int, backend: Backend = "auto",
                codec: str | None = None, frames: int | None = None,
                decode: DecodeFilter = NO_FILTER) -> VideoReader:
    """Open ``path`` for streaming at short side ``short_side``; see the module doc.

    ``codec`` and ``frames`` come from ``sources.parquet`` (the probe); ``frames`` is
    the demux count, which bounds decord; ``decode`` the source's recorded decode filter
    (``SourceRecord.decode``, from ``sources.parquet``): size and frame indices are those after it.
    Raises :class:`ReaderError` when no backend can open the file. ``reader.name``
    tells which backend is actually used, and ``reader.note`` why decord was not, when
    it was asked for (or why the decode filter could not be built: then unfiltered). Iterate the reader for
    every frame, or call ``reader.read(indices)`` for some; :func:`read_frames` wraps
    the latter with the hand-over from a decord that fails midway to PyAV.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown reader backend {backend!r}: expected auto, decord or pyav")
    path = Path(path)
    info = _header(path)
    size = analysis_size(*decode.size(info.width, info.height), short_side)
    codec = codec or info.codec
    note = ""
    if choose_backend(codec, backend) == "decord":
        reader, note = _open_decord(path, size, info, codec, frames, decode)
        if reader is not None:
            return reader
        log.info("%s: %s", path.name, note)
    try:
        reader = PyAVReader(path, size, info, decode)
    except ReaderError as err:
        if not decode.active:
            raise
        note = "; ".join(n for n in (note, f"{err.reason}; read unfiltered") if n)
        log.warning("%s: %s", path.name, note)
        reader = PyAVReader(path, analysis_size(info.width, info.height, short_side), info)
    reader.note = note
    return reader


@dataclass
class FrameRead:
    """What a :func:`read_frames` call delivered: the backend that read last, the size,
    how many frames came out, and why the rest did not ("" when every one did)."""

    path: Path
    backend: str = ""
    size: tuple[int, int] = (0, 0)
    delivered: int = 0
    error: str = ""


def read_frames(path: str | Path, indices: Iterable[int], short_side: int, *, frames: int,
                codec: str | None = None, backend: Backend = "auto",
                result: FrameRead | None = None,
                decode: DecodeFilter = NO_FILTER) -> Iterator[Frame]:
    """The frames at ``indices`` (any order, repeats fine), in increasing order, at short
    side ``short_side``: one sequential pass of one reader (see the module doc).

    ``frames`` is the probe's demux count; indices at or beyond it are never read.
    ``decode`` is the source's recorded filter: indices count its output frames.
    Indices that could not be decoded are not yielded; ``result.error`` says why (a file
    no backend opens is such a case, not an exception). decord that cannot open falls
    back to PyAV (:func:`open_reader`); decord failing midway hands the indices it had
    not delivered yet to PyAV.
    """
    path = Path(path)
    result = result if result is not None else FrameRead(path)
    todo = sorted({int(i) for i in indices if 0 <= int(i) < frames})
    done = -1
    for attempt in (backend, "pyav"):
        if not todo:
            result.error = ""
            return
        try:
            reader = open_reader(path, short_side, attempt, codec=codec, frames=frames,
                                 decode=decode)
        except ReaderError as err:
            result.error = err.reason
            return
        with reader:
            result.backend, result.size = reader.name, reader.size
            for frame in reader.read(todo):
                result.delivered += 1
                done = frame.index
                yield frame
            result.error = reader.error
        if not result.error or reader.name == "pyav":
            return
        log.info("%s: %s; PyAV reads the frames after %d", path.name, result.error, done)
        todo = [i for i in todo if i > done]
