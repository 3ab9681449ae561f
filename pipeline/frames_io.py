"""Decode the kept frames of one source, resize them, encode them for the shards.

The shard stage is the second (and last) decode of a video, and it only needs the
frames of kept triplets. Both backends read those frames *in order*: random access
costs 8-25x more per triplet than a sequential pass (a seek lands on a keyframe and
decodes forward anyway), so we walk the file once and keep the indices we need.

Backends (measured on this project's 2-core machine, ``benchmarks/bench_shard.py``):

- PyAV decodes every frame in order and converts only the needed ones, straight from
  the decoder's YUV to RGB at the stored size with one reused ``VideoReformatter``
  (area filter). Converting at the small size is ~4x cheaper than converting at full
  size and resizing afterwards (3 ms vs 11 ms a frame on the 1440x1074 HEVC clip),
  and the pass stops after the last needed frame. It handles every codec.
- decord reads the needed indices with ``get_batch`` on sorted batches and resizes in
  its own FFmpeg filter graph. It never indexes at or past the probe's demux count
  (``frames``): a header that over-reports its length makes decord hang. It was not
  faster than PyAV on any file measured, and its bicubic scaler gives slightly
  different pixels, so ``auto`` reads with PyAV; decord stays an explicit choice for
  the codecs it handles, and falls back to PyAV for the indices it could not deliver.

Frames keep the source's aspect; the short side is ``size`` (never upscaled, both sides
even: :func:`pipeline.video.analysis_size`, shared with detect_cuts), so the three
frames of a triplet always share one size.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import decord
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from PIL import Image

from pipeline.video import DECORD_CODECS, analysis_size

log = logging.getLogger("inbetweener.frames")

Backend = Literal["auto", "decord", "pyav"]
ImageFormat = Literal["png", "webp", "jpg"]
DECORD_BATCH = 16  # indices per get_batch: amortises the call, bounds memory
WEBP_METHOD = 0  # lossless effort 0-6: 0 is ~4x faster than 4 for ~10% more bytes


class FrameReadError(Exception):
    """A backend could not open or decode the file; ``reason`` goes into the summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _message(err: BaseException) -> str:
    """One line from any backend exception (FFmpeg's own words when there are any)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(text.split())[:300]


def stored_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) of stored frames: short side ``short_side``, aspect kept, even, no upscale."""
    return analysis_size(width, height, short_side)


@dataclass
class FrameRead:
    """Which frames came out, and why the rest did not (``error`` stays "" when all did)."""

    path: Path
    backend: str = ""
    error: str = ""
    delivered: int = 0


def _wanted(indices: Iterable[int], frames: int) -> list[int]:
    """Sorted unique indices below the demux count: nothing past the real end is asked."""
    return sorted({int(i) for i in indices if 0 <= int(i) < frames})


def read_pyav(path: Path, indices: list[int], size: tuple[int, int],
              state: FrameRead) -> Iterator[tuple[int, np.ndarray]]:
    """Decode in order, convert only ``indices`` (sorted) to RGB at ``size``.

    Frame numbers count decoded frames in presentation order, as the probe and
    detect_cuts do. A decode error ends the pass and is noted in ``state.error``.
    """
    if not indices:
        return
    state.backend = "pyav"
    wanted, last = set(indices), indices[-1]
    scaler = VideoReformatter()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for number, frame in enumerate(container.decode(stream)):
                if number in wanted:
                    out = scaler.reformat(frame, width=size[0], height=size[1], format="rgb24",
                                          interpolation=Interpolation.AREA)
                    state.delivered += 1
                    yield number, out.to_ndarray()
                if number >= last:
                    return
    except (av.FFmpegError, OSError, IndexError) as err:
        state.error = f"pyav: {_message(err)}"


def read_decord(path: Path, indices: list[int], size: tuple[int, int], frames: int,
                codec: str, state: FrameRead) -> Iterator[tuple[int, np.ndarray]]:
    """``get_batch`` over sorted batches of ``indices``, never past ``frames``.

    Raises FrameReadError when decord cannot open the file or its index is shorter
    than the demux count (it would then misnumber frames); an error after some batches
    is noted in ``state.error`` and ends the pass.
    """
    state.backend = "decord"
    try:
        reader = decord.VideoReader(str(path), width=size[0], height=size[1],
                                    num_threads=DECORD_CODECS.get(codec, 0))
    except (decord.DECORDError, RuntimeError) as err:
        raise FrameReadError(f"decord: {_message(err)}") from err
    if len(reader) < frames:
        raise FrameReadError(f"decord: index has {len(reader)} frames, demux found {frames}")
    for start in range(0, len(indices), DECORD_BATCH):
        batch = indices[start:start + DECORD_BATCH]
        try:
            rgb = reader.get_batch(batch).asnumpy()
        except (decord.DECORDError, RuntimeError) as err:
            state.error = f"decord: {_message(err)}"
            return
        for number, image in zip(batch, rgb):
            state.delivered += 1
            yield number, image


def choose_backend(codec: str, backend: Backend) -> str:
    """``auto`` is PyAV (see module doc); decord only for codecs it decodes correctly."""
    if backend == "decord" and codec in DECORD_CODECS:
        return "decord"
    return "pyav"


def read_frames(path: str | Path, indices: Iterable[int], size: tuple[int, int], *,
                frames: int, codec: str = "", backend: Backend = "auto",
                state: FrameRead | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, H x W x 3 uint8)`` for the wanted indices, in increasing order.

    ``frames`` is the probe's demux count; indices at or beyond it are never read.
    Indices that could not be decoded are simply not yielded; ``state.error`` says why.
    decord failing to open falls back to PyAV; decord failing midway falls back to
    PyAV for the indices it had not delivered yet.
    """
    path = Path(path)
    state = state if state is not None else FrameRead(path)
    todo = _wanted(indices, frames)
    if choose_backend(codec, backend) == "decord":
        done = -1
        try:
            for number, image in read_decord(path, todo, size, frames, codec, state):
                done = number
                yield number, image
        except FrameReadError as err:
            state.error = err.reason
        if not state.error:
            return
        log.info("%s: %s; PyAV reads the frames after %d", path.name, state.error, done)
        state.error = ""
        todo = [i for i in todo if i > done]
    yield from read_pyav(path, todo, size, state)


@dataclass(frozen=True)
class Encoder:
    """Frame encoding per ``shard.format``; PNG and WebP are lossless, JPEG is not.

    Measured at 256 px short side: PNG level 1 is ~2.5x faster than level 6 for ~13%
    more bytes; lossless WebP is smaller still but several times slower to encode.
    Every encoder here is deterministic: same pixels, same bytes.
    """

    format: ImageFormat = "png"
    png_level: int = 1
    jpg_quality: int = 95

    @property
    def ext(self) -> str:
        return self.format

    def __call__(self, rgb: np.ndarray) -> bytes:
        image = Image.fromarray(rgb, "RGB")
        buf = io.BytesIO()
        if self.format == "png":
            image.save(buf, "PNG", compress_level=self.png_level)
        elif self.format == "webp":
            image.save(buf, "WEBP", lossless=True, method=WEBP_METHOD, exact=True)
        elif self.format == "jpg":
            image.save(buf, "JPEG", quality=self.jpg_quality)
        else:
            raise ValueError(f"unknown image format {self.format!r}: expected png, webp or jpg")
        return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """Encoded bytes -> H x W x 3 uint8 (tests, verify and the contact sheet use it)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
