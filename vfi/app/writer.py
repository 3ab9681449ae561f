"""Writing ``interpolate``'s output: H.264 video at the new rate, the input's audio kept.

The container is chosen from OUT's suffix, not guessed from the file name, because the
file is written under a temporary name (``pipeline.core.atomic``) and renamed when whole.

Audio is copied packet for packet (no re-encode, no quality loss) when the output
container accepts its codec, and re-encoded to AAC when it does not (Vorbis in an MP4,
say: the muxer takes it, players do not). It is read from its own demuxer, lazily, and muxed as the video advances, so the
file is interleaved and nothing is held in memory. Output video starts at time 0; audio
is shifted by the input video's start time so the two stay in sync.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.media.video import main_stream

log = logging.getLogger("inbetweener.vfi.interpolate")  # one name per command the user runs

FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
X264_PRESET = "veryfast"
AUDIO_FALLBACK = "aac"
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


def container_format(path: Path) -> str:
    """The FFmpeg muxer for OUT's suffix; ValueError naming the suffixes we write."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported output suffix {Path(path).suffix!r}; "
                         f"use one of {', '.join(sorted(FORMATS))}")
    return fmt


def audio_offset(path: Path) -> float | None:
    """None without audio; else the video's start time (s), which output time 0 is.

    The audio is shifted by it so that sound and picture stay together.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        video = main_stream(container)
        start = video.start_time
        return float(start * video.time_base) if start is not None else 0.0


def copyable(codec: str, fmt: str) -> bool:
    """Whether to copy ``codec`` into ``fmt`` rather than re-encode it.

    Matroska takes anything FFmpeg muxes. MP4/MOV muxers accept more (Vorbis, say)
    than players play, so only the codecs players expect there are copied.
    """
    return fmt not in ("mp4", "mov") or codec in MP4_AUDIO


class AudioCopy:
    """The first audio stream of ``src``, muxed into ``out`` up to a time on request."""

    def __init__(self, src: Path, out: av.container.OutputContainer, offset: float) -> None:
        self.input = av.open(str(src))
        self.source = self.input.streams.audio[0]
        self.offset = offset
        self.copy = copyable(self.source.codec_context.name, out.format.name)
        if self.copy:
            try:
                self.stream = out.add_stream_from_template(self.source)
            except ValueError:  # FFmpeg's muxer refuses this codec
                self.copy = False
        if not self.copy:
            self.stream = out.add_stream(AUDIO_FALLBACK, rate=self.source.rate)
            self.resampler = av.AudioResampler(format="fltp", layout=self.source.layout,
                                               rate=self.source.rate)
            log.info("audio: %s is not copied into %s; re-encoded to %s",
                     self.source.codec_context.name, out.format.name, AUDIO_FALLBACK)
        self.out = out
        self.packets: Iterator[av.Packet] = self.input.demux(self.source)
        self.pending: av.Packet | None = None
        self.done = False

    def _next(self) -> av.Packet | None:
        """The next packet with a timestamp (flush packets carry none)."""
        for packet in self.packets:
            if packet.pts is not None and packet.size:
                return packet
        self.done = True
        return None

    def until(self, seconds: float) -> None:
        """Mux every audio packet that starts before ``seconds`` (output time)."""
        while not self.done:
            if self.pending is None:
                self.pending = self._next()
                if self.pending is None:
                    break
            if float(self.pending.pts * self.pending.time_base) - self.offset >= seconds:
                break
            self._mux(self.pending)
            self.pending = None

    def _mux(self, packet: av.Packet) -> None:
        if self.copy:
            shift = round(self.offset / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.stream
            self.out.mux(packet)
            return
        for frame in packet.decode():
            if float(frame.time or 0.0) + frame.samples / frame.sample_rate <= self.offset:
                continue
            for out_frame in self.resampler.resample(frame):
                out_frame.pts = None  # the encoder counts samples from 0
                self.out.mux(self.stream.encode(out_frame))

    def finish(self) -> None:
        """Everything left, then the encoder's tail (when re-encoding)."""
        self.until(float("inf"))
        if not self.copy:
            self.out.mux(self.stream.encode(None))
        self.input.close()


class VideoWriter:
    """H.264 (yuv420p) frames at ``rate``, frame ``j`` at ``j / rate`` s, plus audio."""

    def __init__(self, path: Path, fmt: str, width: int, height: int, rate: Fraction,
                 crf: int = 18, audio_from: Path | None = None, audio_offset: float = 0.0) -> None:
        self.container = av.open(str(path), "w", format=fmt)
        try:
            self.stream = self.container.add_stream("libx264", rate=rate)
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = "yuv420p"
            self.stream.time_base = 1 / Fraction(rate)
            self.stream.codec_context.time_base = 1 / Fraction(rate)
            self.stream.options = {"crf": str(crf), "preset": X264_PRESET}
            self.rate = Fraction(rate)
            self.audio = AudioCopy(audio_from, self.container, audio_offset) if audio_from else None
        except BaseException:
            self.container.close()
            raise
        self.frames = 0
        self.scaler = VideoReformatter()
        self.last: tuple[np.ndarray, av.VideoFrame] | None = None

    def _yuv(self, rgb: np.ndarray) -> av.VideoFrame:
        """rgb24 -> yuv420p with one reused scaler (``frame.reformat`` would build a new
        one per frame: 7 ms at 480p, more than the in-between); a held image that is
        written again (the same array) is converted once."""
        if self.last is None or self.last[0] is not rgb:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            self.last = (rgb, self.scaler.reformat(frame, format="yuv420p"))
        return self.last[1]

    def write(self, rgb: np.ndarray) -> None:
        """Append one H x W x 3 uint8 frame."""
        frame = self._yuv(rgb)
        frame.pts = self.frames
        self.frames += 1
        if self.audio is not None:
            self.audio.until(float(self.frames / self.rate))
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and the rest of the audio, finish the file."""
        self.container.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.finish()
        self.container.close()

    def abort(self) -> None:
        """Close without finishing (the caller deletes the temporary file)."""
        if self.audio is not None:
            self.audio.input.close()
        self.container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
