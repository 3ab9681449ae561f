"""The decode filter every reader applies: inverse telecine, deinterlace, bar crop.

:class:`DecodeFilter` is the recorded verdict of :func:`pipeline.media.scan.scan_source`
(the ``SCAN_COLUMNS`` of ``sources.parquet``); :class:`FilterGraph` runs it through PyAV's
filter graph between the decoder and the resize, so analysis, shards and naive triplets
see the same output frames with the same indices. A filter that makes no sense (a
hand-edited table) raises :class:`ScanError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

SCAN_TYPES = ("progressive", "telecine", "interlaced")
FIELD_ORDERS = ("tff", "bff", "")
# The columns the download stage adds to sources.parquet, with their "nothing to do"
# value: a table written before them decodes unfiltered (what every reader did then).
SCAN_COLUMNS: dict[str, object] = {
    "scan": "progressive", "field_order": "", "pattern": "", "out_fps": 0.0,
    "out_frames": 0, "crop": "", "scan_error": "",
}


class ScanError(ValueError):
    """A recorded decode filter that makes no sense (a hand-edited or foreign table)."""


@dataclass(frozen=True)
class DecodeFilter:
    """What a reader runs between the decoder and the resize; the default does nothing.

    ``crop`` is FFmpeg's ``w:h:x:y`` in source pixels (or ""). Picklable, so detect_cuts
    hands it to its worker processes.
    """

    scan: str = "progressive"
    field_order: str = ""
    pattern: str = ""
    crop: str = ""

    def __post_init__(self) -> None:
        if self.scan not in SCAN_TYPES:
            raise ScanError(f"scan {self.scan!r}: expected one of {', '.join(SCAN_TYPES)}")
        if self.field_order not in FIELD_ORDERS:
            raise ScanError(f"field_order {self.field_order!r}: expected tff, bff or ''")
        if self.scan != "progressive" and not self.field_order:
            raise ScanError(f"scan {self.scan} needs a field order (tff or bff)")
        if self.pattern not in ("", "3:2") or (self.pattern and self.scan != "telecine"):
            raise ScanError(f"pattern {self.pattern!r}: only '3:2', and only for telecine")
        if self.crop:
            crop_box(self.crop)

    @property
    def active(self) -> bool:
        """Whether frames pass a filter graph at all (False: today's plain decode)."""
        return self.scan != "progressive" or bool(self.crop)

    @property
    def reorders_fields(self) -> bool:
        """IVTC or deinterlacing: work only an FFmpeg filter graph can do."""
        return self.scan != "progressive"

    def chain(self) -> list[tuple[str, str]]:
        """The FFmpeg filters, in order: field work first (on whole frames), then crop."""
        steps: list[tuple[str, str]] = []
        if self.scan == "telecine":
            # fieldmatch rebuilds film frames; yadif only touches frames fieldmatch still
            # finds combed (orphan fields at edits), as FFmpeg's docs recommend.
            steps += [("fieldmatch", f"order={self.field_order}:combmatch=sc"),
                      ("yadif", "deint=interlaced")]
            if self.pattern == "3:2":
                steps.append(("decimate", "cycle=5"))
        elif self.scan == "interlaced":
            parity = "tff" if self.field_order == "tff" else "bff"
            steps.append(("bwdif", f"mode=send_frame:parity={parity}:deint=all"))
        if self.crop:
            steps.append(("crop", f"{self.crop}:exact=1"))
        return steps

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The output frame size for a ``width`` x ``height`` source."""
        if not self.crop:
            return width, height
        w, h, _, _ = crop_box(self.crop)
        return w, h

    def out_frames(self, frames: int) -> int:
        """Frames out of ``frames`` decoded: decimate drops one of every five
        (measured: FFmpeg's decimate keeps a trailing partial cycle of up to 4 whole)."""
        return frames - frames // 5 if self.pattern == "3:2" else frames

    def out_fps(self, fps: float) -> float:
        return fps * 4.0 / 5.0 if self.pattern == "3:2" else fps


NO_FILTER = DecodeFilter()


def crop_box(crop: str) -> tuple[int, int, int, int]:
    """(w, h, x, y) from ``w:h:x:y``; ScanError for anything else."""
    try:
        w, h, x, y = (int(v) for v in crop.split(":"))
    except ValueError:
        raise ScanError(f"crop {crop!r}: expected w:h:x:y in pixels") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ScanError(f"crop {crop!r}: sizes must be positive, offsets not negative")
    return w, h, x, y


# --- the filter graph ----------------------------------------------------------------


class FilterGraph:
    """An FFmpeg filter chain over one stream's decoded frames, through PyAV.

    The buffer source is made from arguments rather than ``add_buffer(template=)``:
    telecine-aware filters (fieldmatch, decimate) refuse a graph without a frame rate,
    which the template does not pass. The Graph object is kept on ``self``: PyAV frees
    the filters with it, and pushing into a freed buffer crashes the process.
    """

    def __init__(self, stream: av.VideoStream, chain: list[tuple[str, str]]) -> None:
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        tb = stream.time_base or Fraction(1, 1000)
        sar = stream.sample_aspect_ratio or Fraction(1)
        self.graph = av.filter.Graph()
        self.source = self.graph.add(
            "buffer", f"video_size={ctx.width}x{ctx.height}:pix_fmt={ctx.pix_fmt}:"
            f"time_base={tb.numerator}/{tb.denominator}:"
            f"pixel_aspect={sar.numerator}/{sar.denominator}:"
            f"frame_rate={rate.numerator}/{rate.denominator}")
        last = self.source
        for name, args in chain:
            node = self.graph.add(name, args)
            last.link_to(node)
            last = node
        self.sink = self.graph.add("buffersink")
        last.link_to(self.sink)
        self.graph.configure()

    def push(self, frame: av.VideoFrame | None) -> Iterator[av.VideoFrame]:
        """Feed one decoded frame (None: end of stream) and yield what comes out."""
        self.source.push(frame)
        while True:
            try:
                yield self.sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return


def filtered(frames: Iterator[av.VideoFrame], graph: FilterGraph) -> Iterator[av.VideoFrame]:
    """Every output frame of ``graph`` over ``frames``, flushed at the end."""
    for frame in frames:
        yield from graph.push(frame)
    yield from graph.push(None)
