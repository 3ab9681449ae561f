"""Probe a video file: what it is, and whether it is whole and decodable.

The download stage records this for every source, and later stages trust it, so a
probe must not just read the header: headers lie (truncated downloads keep a header
that promises the full length; some containers carry no frame count at all). We
therefore demux every packet (cheap: no decoding) to count frames and find the real
duration, and decode exactly one frame to prove the codec works. A 60 s 1440p HEVC
file probes in well under a second.

Frame count = number of non-empty video packets. That is exact for every common
container/codec pair (mp4, mkv, webm, gif, avi with H.264/HEVC/VP8/VP9/AV1/MPEG-4);
the known exceptions are exotic (field-coded H.264 in some containers, "packed
bitstream" DivX AVIs), and the decode stages count the frames they actually get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av

from pipeline.core.errors import ReasonError

# Demuxers whose header duration is written by the muxer and describes the whole file
# (mkv Segment/Info/Duration, mp4 mvhd). For others FFmpeg may only estimate it
# (e.g. from the bit rate), so comparing it with what we demuxed would raise false alarms.
_HEADER_DURATION_FORMATS = ("matroska", "mov")

# A file counts as truncated by duration when the demuxed end falls short of the header
# duration by more than this many seconds and this fraction of the header duration.
_DURATION_SLACK_S = 0.5
_DURATION_SLACK_FRACTION = 0.05

# Relative difference between header rate and frames/duration beyond which the header
# rate is not the average (see _fps).
_FPS_TOLERANCE = 0.02


class ProbeError(ReasonError):
    """The file is not a usable video; ``reason`` is short and goes into the table."""


@dataclass(frozen=True)
class ProbeInfo:
    """What the download stage records per source (see sources.parquet)."""

    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    codec: str  # canonical codec name ("h264", "hevc", "vp9", "av1", "gif", ...)
    width: int
    height: int
    fps: float  # average frame rate (see _fps); 0.0 if nothing tells
    frames: int  # counted by demuxing, never taken from the header
    duration: float  # seconds, from packet timestamps
    pix_fmt: str  # of the first decoded frame
    header_frames: int  # what the header claims (0 if it does not say)


@dataclass
class _Scan:
    """What one demux pass over all packets found."""

    packets: int = 0  # non-empty packets of the video stream
    first_pts: float | None = None  # seconds, video stream
    video_end: float | None = None  # seconds, max pts + duration of the video stream
    end: float | None = None  # seconds, max over all streams
    first_frame: av.VideoFrame | None = None
    decode_error: str | None = None
    demux_error: str | None = None
    ends: dict[int, float] = field(default_factory=dict)


def _message(err: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and file-name decoration."""
    text = getattr(err, "strerror", None) or str(err)
    log = getattr(err, "log", None)
    if log and isinstance(log, tuple) and len(log) >= 3 and log[2]:
        text = f"{text} ({str(log[2]).strip()})"
    return text


def _kind(head: bytes) -> str | None:
    """Name the file type from its first bytes, to explain why FFmpeg could not open it."""
    if head[4:8] == b"ftyp":
        return "mp4/mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska/webm"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"GIF8"):
        return "gif"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    return None


def _mp4_end(fh: BinaryIO, size: int) -> int | None:
    """Where the last top-level mp4 box says it ends (ftyp, moov, mdat, ...).

    A download cut short leaves the box it was in (usually mdat) claiming bytes the
    file does not have. None when the box structure is not sane enough to judge.
    """
    pos = 0
    while pos < size:
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:  # a few zero bytes of padding are harmless; anything else is cut
            return size if not head.strip(b"\0") else pos + 8
        box = int.from_bytes(head[:4], "big")
        if box == 1 and len(head) == 16:
            box = int.from_bytes(head[8:16], "big")
        elif box == 0:  # "extends to the end of the file"
            return size
        if box < 8:
            return None
        pos += box
    return pos


def _vint(fh: BinaryIO) -> tuple[int, bool] | None:
    """An EBML variable-length integer: (value, all value bits set?) or None at EOF."""
    first = fh.read(1)
    if not first or first[0] == 0:
        return None
    length = 8 - first[0].bit_length() + 1
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = int.from_bytes(bytes([first[0] & (0xFF >> length)]) + rest, "big")
    return value, value == (1 << (7 * length)) - 1


def _mkv_end(fh: BinaryIO, size: int) -> int | None:
    """Where the Segment element of a Matroska/WebM file says it ends.

    Muxers writing to a seekable file fill in the Segment size at the end; live
    streams leave it "unknown" (all ones), and then we cannot judge (None).
    """
    fh.seek(4)  # past the EBML header ID
    header = _vint(fh)
    if header is None:
        return None
    fh.seek(header[0], 1)
    if fh.read(4) != b"\x18\x53\x80\x67":  # Segment ID
        return None
    segment = _vint(fh)
    if segment is None or segment[1]:
        return None
    return fh.tell() + segment[0]


def _declared_end(path: Path) -> int | None:
    """Bytes the container structure claims (mp4 and Matroska only), else None."""
    with open(path, "rb") as fh:
        kind = _kind(fh.read(64))
        size = path.stat().st_size
        if kind == "mp4/mov":
            return _mp4_end(fh, size)
        if kind == "matroska/webm":
            return _mkv_end(fh, size)
    return None


def _check_bytes(path: Path) -> None:
    """Raise if the file is shorter than its own container structure says."""
    end, size = _declared_end(path), path.stat().st_size
    if end is not None and end > size:
        raise ProbeError(f"truncated: container needs {end} bytes, file has {size}")


def _open_error(path: Path, err: BaseException) -> ProbeError:
    """A reason for a file FFmpeg cannot open: a known type that fails is damaged.

    The typical case is a download cut short: an mp4 whose index (moov) was to come at
    the end, or an mkv that ends inside the first cluster.
    """
    with open(path, "rb") as fh:
        kind = _kind(fh.read(64))
    if kind == "html":
        return ProbeError("html page, not a video")
    try:
        _check_bytes(path)
    except ProbeError as truncated:
        return truncated
    if kind is not None:
        return ProbeError(f"truncated or corrupt {kind}: {_message(err)}")
    return ProbeError(f"not a media file: {_message(err)}")


def _open(path: Path) -> av.container.InputContainer:
    """Open ``path`` or say why it is not a media file at all."""
    if not path.is_file():
        raise ProbeError("no such file")
    if path.stat().st_size == 0:
        raise ProbeError("empty file")
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError) as err:
        raise _open_error(path, err) from err


def main_stream(container: av.container.InputContainer) -> av.VideoStream:
    """The main video stream: cover art / thumbnails (attached pictures) do not count.

    Every reader uses this choice too, so frame counts always refer to the same stream.
    """
    attached = av.stream.Disposition.attached_pic
    streams = [s for s in container.streams.video if not s.disposition & attached]
    if not streams:
        raise ProbeError("no video stream")
    best = container.streams.best("video")
    return best if best in streams else streams[0]


def _codec_name(stream: av.VideoStream) -> str:
    """Canonical codec name; PyAV gives no codec context when FFmpeg has no decoder."""
    ctx = stream.codec_context
    if ctx is None:
        raise ProbeError("unsupported codec: FFmpeg has no decoder for the video stream")
    return ctx.codec.canonical_name


def _check_size(stream: av.VideoStream) -> None:
    """A zero dimension means a broken header; nothing downstream can use it."""
    w, h = stream.codec_context.width, stream.codec_context.height
    if w <= 0 or h <= 0:
        raise ProbeError(f"zero size: {w}x{h}")


def _decode_first(packet: av.Packet, scan: _Scan) -> None:
    """Feed one packet to the decoder until it yields the first frame (or fails)."""
    try:
        frames = packet.decode()
    except (av.FFmpegError, OSError) as err:
        scan.decode_error = _message(err)
        return
    if frames:
        scan.first_frame = frames[0]


def _note_time(packet: av.Packet, scan: _Scan, video_index: int) -> None:
    """Track the first video timestamp and the end time of every stream."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or packet.time_base is None:
        return
    start = float(ts * packet.time_base)
    end = float((ts + (packet.duration or 0)) * packet.time_base)
    idx = packet.stream.index
    scan.ends[idx] = max(scan.ends.get(idx, end), end)
    if idx == video_index and (scan.first_pts is None or start < scan.first_pts):
        scan.first_pts = start


def _scan(container: av.container.InputContainer, stream: av.VideoStream) -> _Scan:
    """One demux pass over every packet; decodes only until the first frame appears."""
    scan = _Scan()
    try:
        for packet in container.demux():
            if packet.size == 0:  # PyAV's end-of-stream flush packets
                continue
            _note_time(packet, scan, stream.index)
            if packet.stream.index != stream.index:
                continue
            scan.packets += 1
            if scan.first_frame is None and scan.decode_error is None:
                _decode_first(packet, scan)
    except (av.FFmpegError, OSError) as err:
        scan.demux_error = _message(err)
    _flush_decoder(stream, scan)
    scan.video_end = scan.ends.get(stream.index)
    scan.end = max(scan.ends.values()) if scan.ends else None
    return scan


def _flush_decoder(stream: av.VideoStream, scan: _Scan) -> None:
    """Decoders with delay (B-frames, threads) may hold the only frame of a short file."""
    if scan.first_frame is not None or scan.decode_error is not None or not scan.packets:
        return
    try:
        frames = stream.codec_context.decode(None)
    except (av.FFmpegError, OSError) as err:
        scan.decode_error = _message(err)
        return
    if frames:
        scan.first_frame = frames[0]
    else:
        scan.decode_error = "no frame came out of the decoder"


def _header_duration(container: av.container.InputContainer) -> float | None:
    """The container's own duration in seconds, only where the muxer wrote it."""
    if container.duration is None or not container.format.name.startswith(
        _HEADER_DURATION_FORMATS
    ):
        return None
    return container.duration / av.time_base


def _check_whole(container: av.container.InputContainer, stream: av.VideoStream,
                 scan: _Scan) -> None:
    """Raise if the demux pass shows the file is cut short or damaged."""
    if scan.demux_error is not None:
        raise ProbeError(
            f"truncated or corrupt: demux failed after {scan.packets} packets: "
            f"{scan.demux_error}"
        )
    if scan.packets == 0:
        raise ProbeError("truncated or corrupt: no video packets")
    header_frames = stream.frames or 0
    if header_frames > scan.packets:
        raise ProbeError(f"truncated: header says {header_frames} frames, found {scan.packets}")
    expected = _header_duration(container)
    start = (container.start_time or 0) / av.time_base
    if expected is not None and scan.end is not None:
        found = scan.end - start
        if expected - found > max(_DURATION_SLACK_S, _DURATION_SLACK_FRACTION * expected):
            raise ProbeError(f"truncated: header says {expected:.3f} s, found {found:.3f} s")


def _stream_rate(stream: av.VideoStream) -> float:
    """The average frame rate, else FFmpeg's guess; 0.0 when neither is known."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    return 0.0


def _fps(rate: float, frames: int, duration: float) -> float:
    """The header rate, unless the timestamps disagree: then frames / duration.

    Variable-frame-rate files and GIFs (whole-centisecond delays: a "24 fps" GIF mixes
    4 and 5 cs frames, and FFmpeg reports 25) carry a nominal rate that is not the real
    average. A small difference is timestamp rounding (mkv stores milliseconds) and
    keeps the exact header value.
    """
    if frames < 2 or duration <= 0:
        return rate
    measured = frames / duration
    if not rate or abs(measured - rate) > _FPS_TOLERANCE * rate:
        return measured
    return rate


def _duration(stream: av.VideoStream, scan: _Scan, rate: float) -> float:
    """Seconds from packet timestamps (right for VFR); else header; else frames / rate."""
    if scan.video_end is not None and scan.first_pts is not None:
        return max(scan.video_end - scan.first_pts, 0.0)
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return scan.packets / rate if rate > 0 else 0.0


def _info(container: av.container.InputContainer, stream: av.VideoStream, codec: str,
          scan: _Scan) -> ProbeInfo:
    """Assemble the result; size and pixel format come from the decoded frame."""
    frame = scan.first_frame
    rate = _stream_rate(stream)
    duration = _duration(stream, scan, rate)
    rate = _fps(rate, scan.packets, duration)
    return ProbeInfo(
        container=container.format.name,
        codec=codec,
        width=frame.width,
        height=frame.height,
        fps=rate,
        frames=scan.packets,
        duration=duration,
        pix_fmt=frame.format.name,
        header_frames=stream.frames or 0,
    )


def probe(path: str | Path) -> ProbeInfo:
    """Describe the video at ``path`` or raise ProbeError with a short reason.

    Checks, in order: the file exists and is not empty; FFmpeg recognises the format;
    there is a video stream; FFmpeg has a decoder for it; the size is not zero; every
    packet demuxes and the count/duration match what the header promises; the file
    has every byte its mp4 boxes / Matroska segment claim; the first frame decodes.
    """
    path = Path(path)
    with _open(path) as container:
        stream = main_stream(container)
        codec = _codec_name(stream)
        _check_size(stream)
        scan = _scan(container, stream)
        _check_whole(container, stream, scan)
        _check_bytes(path)
        if scan.first_frame is None:
            raise ProbeError(f"cannot decode {codec}: {scan.decode_error}")
        return _info(container, stream, codec, scan)
