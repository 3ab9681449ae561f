"""Small test videos written with PyAV, and helpers that make broken ones.

Tests generate every file they need here so they never depend on /work/shared or on
network data. Frames are a moving gradient: cheap, deterministic, and compressible by
every codec, so files stay a few kB.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Pixel formats the generated frames are handed to the encoder in; the encoder's own
# pix_fmt is converted to by PyAV (reformat) when it differs.
_GRAY_FORMATS = {"gray", "gray8"}


def _frame_rgb(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i``: a diagonal gradient that moves with i (so frames differ)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 3 + y * 2 + i * 7) % 256
    return np.stack([base, (base + 85) % 256, (255 - base)], axis=-1).astype(np.uint8)


def _to_frame(rgb: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """An encoder-ready frame; gray formats start from a gray image, others from RGB."""
    if pix_fmt in _GRAY_FORMATS:
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., 0]), format="gray")
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


def write_video(
    path: str | Path,
    frames: int = 24,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    fps: int = 24,
    pix_fmt: str = "yuv420p",
    container: str | None = None,
    container_options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` frames of ``size`` (width, height) and return ``path``.

    ``container`` is an FFmpeg muxer name; by default it follows the file suffix.
    ``container_options`` e.g. {"movflags": "+faststart"} puts the mp4 index first.
    """
    path = Path(path)
    with av.open(str(path), "w", format=container, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=Fraction(fps), options=codec_options or {})
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        for i in range(frames):
            frame = _to_frame(_frame_rgb(i, size), pix_fmt)
            out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    return path


def write_zero_byte(path: str | Path) -> Path:
    """An empty file: what an interrupted or failed download often leaves behind."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_html(path: str | Path) -> Path:
    """An HTML error page saved under a video name (a login wall or a 404 page)."""
    path = Path(path)
    path.write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>Not Found</title></head>"
        b"<body><h1>404 Not Found</h1></body></html>\n"
    )
    return path


def write_truncated(src: str | Path, dest: str | Path, fraction: float = 0.6) -> Path:
    """The first ``fraction`` of ``src``'s bytes: a download cut short."""
    data = Path(src).read_bytes()
    dest = Path(dest)
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def _mp4_box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(payload start, end) of the first top-level mp4 box of type ``kind``."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        header = 8
        if size == 1:  # 64-bit size follows the type
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # box runs to the end of the file
            size = len(data) - pos
        if data[pos + 4 : pos + 8] == kind:
            return pos + header, pos + size
        pos += size
    raise ValueError(f"no {kind!r} box")


def write_corrupt_payload(src: str | Path, dest: str | Path, seed: int = 0) -> Path:
    """Copy an mp4 with the whole media payload (mdat) replaced by random bytes.

    The index (moov) stays intact, so the file opens and demuxes fine, but not one
    frame decodes: the case a header-only probe would wrongly accept.
    """
    data = bytearray(Path(src).read_bytes())
    start, end = _mp4_box(bytes(data), b"mdat")
    data[start:end] = np.random.default_rng(seed).bytes(end - start)
    dest = Path(dest)
    dest.write_bytes(bytes(data))
    return dest


def write_unknown_codec(path: str | Path, frames: int = 8) -> Path:
    """A video stream whose codec tag FFmpeg has no decoder for.

    ``.avi``: MPEG-4 Part 2 (fourcc FMP4, in both strh and strf) patched to "ZZZZ".
    ``.mkv``: H.264 (CodecID "V_MPEG4/ISO/AVC") patched to the unknown "V_ZZZZZ/ISO/ZZZ".
    Same-length patches keep every size field valid, so only the codec is unknown.
    """
    path = Path(path)
    if path.suffix == ".mkv":
        old, new = b"V_MPEG4/ISO/AVC", b"V_ZZZZZ/ISO/ZZZ"
        write_video(path, frames=frames)
    else:
        old, new = b"FMP4", b"ZZZZ"
        write_video(path, frames=frames, codec="mpeg4", container="avi")
    data = path.read_bytes()
    if old not in data:
        raise ValueError(f"expected {old!r} to patch")
    path.write_bytes(data.replace(old, new))
    return path


def write_zero_width(path: str | Path, frames: int = 4) -> Path:
    """A raw-video AVI whose header says width 0 (raw video has no other size source).

    The BITMAPINFOHEADER in strf holds biWidth right after its 4-byte biSize (40).
    """
    path = write_video(path, frames=frames, size=(16, 16), codec="rawvideo",
                       pix_fmt="bgr24", container="avi")
    data = bytearray(path.read_bytes())
    strf = data.index(b"strf")
    bih = strf + 8  # skip the chunk id and chunk size
    if int.from_bytes(data[bih : bih + 4], "little") != 40:
        raise ValueError("unexpected BITMAPINFOHEADER layout")
    data[bih + 4 : bih + 8] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def write_audio_only(path: str | Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A WAV file: a real media file with no video stream."""
    path = Path(path)
    samples = int(seconds * rate)
    tone = (np.sin(np.arange(samples) * 0.05) * 8000).astype(np.int16)[None, :]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_vfr_video(path: str | Path, times_ms: tuple[int, ...] = (0, 40, 120, 300, 500),
                    size: tuple[int, int] = (64, 48)) -> Path:
    """An mkv whose frames sit at irregular times (ms): a variable-frame-rate file."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            frame = _to_frame(_frame_rgb(i, size), "yuv420p").reformat(format="yuv420p")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_thumbnail_first(src: str | Path, dest: str | Path, size: tuple[int, int] = (96, 54),
                          fps: int = 1) -> Path:
    """An mkv whose first video stream is a small low-rate thumbnail track, the second ``src``.

    The thumbnail track is an ordinary video stream (not an attached picture): every
    ``1/fps`` seconds of ``src`` shrunk to ``size`` and encoded with libx264. ``src``'s
    main video stream is copied packet for packet, so its frames decode exactly as in
    ``src``. Packets are muxed in time order, as a real muxer interleaves them.
    """
    dest = Path(dest)
    with av.open(str(src)) as inp:
        main = inp.streams.video[0]
        step = max(1, round(float(main.average_rate) / fps))
        thumbs = [f.reformat(width=size[0], height=size[1], format="yuv420p")
                  for n, f in enumerate(inp.decode(main)) if n % step == 0]
    with av.open(str(src)) as inp, av.open(str(dest), "w", format="matroska") as out:
        main = inp.streams.video[0]
        thumb = out.add_stream("libx264", rate=Fraction(fps))
        thumb.width, thumb.height, thumb.pix_fmt = size[0], size[1], "yuv420p"
        thumb.codec_context.time_base = Fraction(1, fps)
        real = out.add_stream_from_template(main)
        packets = [(1, p) for p in inp.demux(main) if p.size]
        for n, frame in enumerate(thumbs):
            frame.pts, frame.time_base = n, Fraction(1, fps)
            packets += [(0, p) for p in thumb.encode(frame)]
        packets += [(0, p) for p in thumb.encode(None)]
        for which, packet in sorted(packets, key=lambda x: (x[1].dts * x[1].time_base, x[0])):
            packet.stream = real if which else thumb
            out.mux(packet)
    return dest
