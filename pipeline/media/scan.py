"""Per-source scan type (progressive, telecine, interlaced) and constant bars; the filter
every reader then decodes through.

The download stage calls :func:`scan_source` once per source, on a bounded sample (at
most ``SAMPLE_FRAMES`` frames in ``WINDOWS`` runs, at full size), and records the verdict
in ``sources.parquet`` (``pipeline.media.decode_filter.SCAN_COLUMNS``); every reader
(``pipeline.media.video``) decodes through the matching
:class:`~pipeline.media.decode_filter.DecodeFilter`, so analysis, shards and naive
triplets see the same output frames with the same indices. Verdicts: progressive (also
when the evidence is thin: no filter), telecine (inverse telecine; 3:2 pulldown at
~29.97/30 fps is decimated 5 -> 4, to 23.976/24 fps), interlaced (deinterlace), and
dark, flat, constant bars to crop. A failed scan records its reason in ``scan_error``
and the source decodes unfiltered; bars refused as "dark everywhere" drop only the crop
(``scan_error`` says so). How the scan decides, and its cost: docs/NOTES.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np

from pipeline.media import probe
from pipeline.media.decode_filter import NO_FILTER, DecodeFilter, FilterGraph, ScanError

log = logging.getLogger("inbetweener.scan")


SAMPLE_FRAMES = 360  # at most this many frames decoded per source
WINDOWS = 3  # runs spread over the file (idet and fieldmatch need consecutive frames)
MIN_DECIDED = 12  # idet verdicts (tff/bff/progressive) needed before trusting a share
COMBED_SHARE = 0.25  # combed share of decided frames above which a source is not progressive
MATCHED_SHARE = 0.10  # combed share after fieldmatch below which it was telecine
MIN_CADENCE = 8  # repeated-field events needed before trusting the 3:2 cadence share
CADENCE_SHARE = 0.8  # share of repeated fields on the 3:2 phases above which it is telecine
CADENCE_BLOCK = 40  # frames (8 cycles) that share one cadence phase (edits shift it)
PULLDOWN_RATES = (30000 / 1001, 30.0)  # rates at which telecine means 3:2 (decimate 5 -> 4)
BAR_STEP = 4  # every n-th sampled frame is measured for bars
BAR_DARK = 32.0  # grey level (0-255 luma) a bar row's mean never exceeds
BAR_FLAT = 8.0  # max - min of a bar row's pixels (luma), in every measured frame
MIN_BAR = 0.02  # bars thinner than this share of the side are ignored

# --- the scan ------------------------------------------------------------------------


@dataclass
class ScanResult:
    """What :func:`scan_source` found; ``columns()`` is its sources.parquet row part."""

    filter: DecodeFilter = NO_FILTER
    out_fps: float = 0.0
    out_frames: int = 0
    error: str = ""  # why the scan failed ("" when it did not); the source is unfiltered
    sampled: int = 0  # frames decoded for the scan
    idet: Counter = field(default_factory=Counter)  # labels before the trial
    matched: Counter = field(default_factory=Counter)  # labels after fieldmatch (trial)
    cadence: float = 0.0  # share of repeated fields on the 3:2 phases (see _cadence)
    repeats: int = 0  # repeated-field events that share is of
    bars: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right (px)

    def columns(self) -> dict[str, object]:
        f = self.filter
        return {"scan": f.scan, "field_order": f.field_order, "pattern": f.pattern,
                "out_fps": float(self.out_fps), "out_frames": int(self.out_frames),
                "crop": f.crop, "scan_error": self.error}


def _windows(frames: int, budget: int, windows: int) -> list[tuple[float, int]]:
    """(start as a share of the file, frames to take) for each sample run."""
    if frames <= budget:
        return [(0.0, frames)]
    each = budget // windows
    return [(k / windows, each) for k in range(windows)]


def _sample(path: Path, start: float, count: int, duration: float,
            chain: list[tuple[str, str]]) -> Iterator[tuple[av.VideoFrame | None, list]]:
    """(decoded frame, what ``chain`` gave for it) for ``count`` consecutive frames from
    about ``start`` x ``duration`` seconds; a last (None, flushed frames) at the end."""
    with av.open(str(path)) as container:
        stream = probe.main_stream(container)
        stream.thread_type = "AUTO"
        if start > 0 and stream.time_base:
            first = (container.start_time or 0) / av.time_base
            container.seek(int((first + start * duration) / stream.time_base), stream=stream,
                           backward=True)
        graph = FilterGraph(stream, chain)
        for index, frame in enumerate(container.decode(stream)):
            if index >= count:
                break
            yield frame, list(graph.push(frame))
        yield None, list(graph.push(None))


def _label(frame: av.VideoFrame) -> str:
    return frame.metadata.get("lavfi.idet.multiple.current_frame", "undetermined")


def _repeated(frame: av.VideoFrame) -> str:
    """idet's repeated-field label (top, bottom, neither): which field equals the
    previous frame's same field. 3:2 pulldown repeats a field on a fixed phase of every
    five frames, which no picture content imitates (see :func:`_cadence`)."""
    return frame.metadata.get("lavfi.idet.repeated.current_frame", "neither")


class _Bars:
    """Per-row and per-column luma extremes over the measured frames (see module doc)."""

    def __init__(self) -> None:
        self.row_mean: np.ndarray | None = None
        self.col_mean: np.ndarray | None = None
        self.row_spread: np.ndarray | None = None
        self.col_spread: np.ndarray | None = None
        self.shape = (0, 0)  # (width, height) of the measured frames


    def add(self, grey: np.ndarray) -> None:
        self.shape = (grey.shape[1], grey.shape[0])
        stats = (grey.mean(1, dtype=np.float32), grey.mean(0, dtype=np.float32),
                 np.ptp(grey, 1), np.ptp(grey, 0))
        if self.row_mean is None:
            self.row_mean, self.col_mean, self.row_spread, self.col_spread = stats
            return
        self.row_mean = np.maximum(self.row_mean, stats[0])
        self.col_mean = np.maximum(self.col_mean, stats[1])
        self.row_spread = np.maximum(self.row_spread, stats[2])
        self.col_spread = np.maximum(self.col_spread, stats[3])

    def edges(self) -> tuple[int, int, int, int]:
        """Bar thickness at top, bottom, left, right (0 where none or under MIN_BAR)."""
        if self.row_mean is None:
            return 0, 0, 0, 0
        rows = (self.row_mean <= BAR_DARK) & (self.row_spread <= BAR_FLAT)
        cols = (self.col_mean <= BAR_DARK) & (self.col_spread <= BAR_FLAT)
        return (_run_length(rows), _run_length(rows[::-1]),
                _run_length(cols), _run_length(cols[::-1]))


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's 8-bit luma (H x W): a view of the Y plane for 8-bit YUV and grey
    frames (what nearly every video is; converting 1440p to grey costs ~20 ms a frame),
    otherwise FFmpeg's conversion to grey."""
    fmt = frame.format
    if (fmt.name.startswith(("yuv", "gray")) and not fmt.name.startswith("yuva")
            and fmt.components[0].bits == 8):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return rows[:frame.height, :frame.width]
    return frame.to_ndarray(format="gray")


def _run_length(flags: np.ndarray) -> int:
    """How many leading entries are True, 0 when under MIN_BAR of the side."""
    n = int(np.argmin(flags)) if not flags.all() else len(flags)
    return n if n >= MIN_BAR * len(flags) else 0


def crop_for(width: int, height: int, bars: tuple[int, int, int, int]) -> str:
    """The ``w:h:x:y`` that removes ``bars`` (snapped inwards to even), or ""."""
    top, bottom, left, right = bars
    if not any(bars):
        return ""
    x, y = left + left % 2, top + top % 2  # round the offset up: keep a bar row, not lose picture
    w = (width - x - right) // 2 * 2
    h = (height - y - bottom) // 2 * 2
    if w < width / 2 or h < height / 2:
        raise ScanError(f"bars {bars} would leave {w}x{h} of {width}x{height}: "
                        "dark everywhere, not bars")
    return f"{w}:{h}:{x}:{y}"


def _first_pass(path: Path, runs: list[tuple[float, int]], duration: float,
                bars: _Bars | None) -> tuple[Counter, int, list[list[str]]]:
    """idet labels of the sample (and bar statistics, when asked), frames decoded, and
    each run's repeated-field labels in order (runs start anywhere in the cadence)."""
    labels: Counter = Counter()
    sampled = 0
    repeats: list[list[str]] = []
    for start, count in runs:
        run: list[str] = []
        for frame, out in _sample(path, start, count, duration, [("idet", "")]):
            if frame is not None:
                if bars is not None and sampled % BAR_STEP == 0:
                    bars.add(luma(frame))
                sampled += 1
            labels.update(_label(o) for o in out)
            run.extend(_repeated(o) for o in out)
        repeats.append(run)
    return labels, sampled, repeats


def _cadence(repeats: list[list[str]], order: str) -> tuple[float, int]:
    """(share of repeated fields on the 3:2 phases, repeated fields counted).

    Why: idet's combed share after fieldmatch is not a telecine test on its own: fine
    stripes and sharp edges make it call matched film frames combed (the synthetic
    source's clip 1: half its frames "bff" after matching). The repeated fields are:
    with top field first, cycle frames (A,A) (B,B) (B,C) (C,D) (D,D) repeat the top
    field in the third frame and the bottom field in the fifth. A held drawing moves a
    repeat one frame inwards (B = C: top in the fourth; C = D: bottom in the fourth), so
    for the best phase p of each run, tops on p, p+1 and bottoms on p+1, p+2 (mod 5)
    are the pattern (fields swapped for bff). The phase is found per ``CADENCE_BLOCK``
    frames of a run, since a video edit restarts the cadence anywhere. Uniformly spread
    repeats (a static stretch's noise, interlaced video) score about 0.4-0.5; 3:2
    pulldown near 1.
    """
    first, second = ("top", "bottom") if order == "tff" else ("bottom", "top")
    hits = total = 0
    blocks = (run[k:k + CADENCE_BLOCK] for run in repeats
              for k in range(0, len(run), CADENCE_BLOCK))
    for block in blocks:
        phases = Counter((i % 5, r) for i, r in enumerate(block) if r in ("top", "bottom"))
        total += sum(phases.values())
        hits += max(phases[p % 5, first] + phases[(p + 1) % 5, first]
                    + phases[(p + 1) % 5, second] + phases[(p + 2) % 5, second]
                    for p in range(5))
    return (hits / total if total else 0.0), total


def _trial(path: Path, runs: list[tuple[float, int]], duration: float, order: str) -> Counter:
    """idet labels of the sample after ``fieldmatch``: does matching fields remove combing?"""
    labels: Counter = Counter()
    chain = [("fieldmatch", f"order={order}:combmatch=sc"), ("idet", "")]
    for start, count in runs:
        for _, out in _sample(path, start, count, duration, chain):
            labels.update(_label(o) for o in out)
    return labels


def _combed(labels: Counter) -> tuple[float, int]:
    """(combed share of decided frames, decided frames)."""
    decided = labels["tff"] + labels["bff"] + labels["progressive"]
    return ((labels["tff"] + labels["bff"]) / decided if decided else 0.0), decided


def _is_pulldown_rate(fps: float) -> bool:
    return any(abs(fps - rate) <= 0.01 * rate for rate in PULLDOWN_RATES)


def _verdict(result: ScanResult, fps: float, path: Path, runs: list[tuple[float, int]],
             duration: float, repeats: list[list[str]]) -> tuple[str, str, str]:
    """(scan, field order, pattern) from the idet labels: combed at a pulldown rate with
    the 3:2 repeated-field cadence is telecine outright; otherwise the fieldmatch trial
    decides (a cadence hidden by stills or broken by edits still matches away)."""
    share, decided = _combed(result.idet)
    if decided < MIN_DECIDED or share < COMBED_SHARE:
        return "progressive", "", ""
    order = "tff" if result.idet["tff"] >= result.idet["bff"] else "bff"
    result.cadence, result.repeats = _cadence(repeats, order)
    if (_is_pulldown_rate(fps) and result.repeats >= MIN_CADENCE
            and result.cadence >= CADENCE_SHARE):
        return "telecine", order, "3:2"
    result.matched = _trial(path, runs, duration, order)
    after, _ = _combed(result.matched)
    if after < MATCHED_SHARE:
        return "telecine", order, "3:2" if _is_pulldown_rate(fps) else ""
    return "interlaced", order, ""


def scan_source(path: str | Path, fps: float, frames: int, duration: float, *,
                scan: Literal["auto", "off"] = "auto",
                crop_bars: Literal["auto", "off"] = "auto",
                budget: int = SAMPLE_FRAMES) -> ScanResult:
    """Scan type and bars of one probed source (``fps``, ``frames``, ``duration`` from
    the probe); see the module doc. Never raises for a bad file: the reason goes into
    ``error`` and the result is the unfiltered decode."""
    path = Path(path)
    result = ScanResult(out_fps=fps, out_frames=frames)
    if scan == "off" and crop_bars == "off":
        return result
    runs = _windows(frames, budget, WINDOWS)
    bars = _Bars() if crop_bars == "auto" else None
    try:
        result.idet, result.sampled, repeats = _first_pass(path, runs, duration, bars)
        kind, order, pattern = (_verdict(result, fps, path, runs, duration, repeats)
                                if scan == "auto" else ("progressive", "", ""))
    except (av.FFmpegError, OSError, ValueError, probe.ProbeError) as err:
        result.error = f"scan failed, decoded unfiltered: {_reason(err)}"
        log.warning("%s: %s", path.name, result.error)
        return result
    result.filter = DecodeFilter(kind, order, pattern, _crop(result, bars))
    result.out_fps = result.filter.out_fps(fps)
    result.out_frames = result.filter.out_frames(frames)
    return result


def _crop(result: ScanResult, bars: _Bars | None) -> str:
    """The crop the bar statistics give, or "" (with the reason in ``result.error`` when
    they were refused: the scan verdict stands, only the crop is dropped)."""
    if bars is None:
        return ""
    result.bars = bars.edges()
    try:
        return crop_for(*bars.shape, result.bars)
    except ScanError as err:
        result.error = f"no crop: {err}"
        log.warning("%s", result.error)
        return ""


def _reason(err: BaseException) -> str:
    text = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split())[:300] or type(err).__name__
