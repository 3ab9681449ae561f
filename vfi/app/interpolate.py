"""``inbetweener interpolate IN OUT``: raise a video's frame rate, cut- and hold-aware.

One streaming pass: each decoded frame is measured and fed to the cut detector
(:mod:`vfi.app.analysis`), leaves a short window with its scene and drawing final,
goes through the schedule (:mod:`vfi.app.retime`), and the output frames that became
decidable are made (copies, or in-betweens from a method of
:mod:`vfi.inference.methods`) and encoded (:mod:`vfi.app.writer`). Only the frames the window and the schedule still need are
kept, so memory does not grow with the video's length.

Everything that can be checked before decoding is (paths, params, checkpoint, probe),
and OUT is written under a temporary name in its own folder and renamed when whole:
a failure or Ctrl-C leaves no partial file behind.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from pipeline.core.atomic import atomic_path
from pipeline.core.config import ConfigError, CutsParams, TripletParams, load_params
from pipeline.core.errors import CommandError, ReasonError
from pipeline.core.progress import Progress, progress
from pipeline.media.decode_filter import NO_FILTER, DecodeFilter
from pipeline.media.probe import ProbeError, ProbeInfo, probe
from pipeline.media.scan import scan_source
from pipeline.media.video import ReaderError, open_reader
from vfi.app.analysis import CutWindow, FrameMeter, Measured, SceneDrawings
from vfi.app.retime import OutFrame, Schedule, SourceFrame, output_rate
from vfi.app.writer import VideoWriter, audio_offset, container_format
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT
from vfi.inference.methods import PEERS, MethodOptions, check_scale, make_method
from vfi.inference.runtime import RUNTIMES

log = logging.getLogger("inbetweener.vfi.interpolate")
# uint8 RGB pair and the wanted times -> one uint8 frame per time (Method.frames)
Inbetween = Callable[[np.ndarray, np.ndarray, Sequence[float]], list[np.ndarray]]

MAX_FACTOR = 16
HOLDS = ("auto", "off")  # --holds: the pipeline's hold rule, or every frame a drawing
# What the summary calls the built-in cut and hold settings; tests/unit/pipeline/core/test_default_params.py
# keeps them equal to the shipped params.yaml.
DEFAULT_SETTINGS = "defaults (= params.yaml)"
RATE_DENOMINATOR = 1001  # NTSC rates: 23.976... -> 24000/1001


class InterpolateError(ReasonError, CommandError):
    """Bad input or options: the reason is the message the user sees."""


@dataclass(frozen=True)
class Options:
    """What to do; ``factor`` is ignored when ``fps`` is given."""

    src: Path
    out: Path
    factor: int = 2
    fps: Fraction | None = None
    retime: bool = False
    max_hold: int = 4
    holds: str = "auto"  # auto: the pipeline's hold rule; off: every frame its own drawing
    method: str = "model"  # without a checkpoint anywhere: rife (see choose_method)
    checkpoint: Path | None = None  # None: the train stage's DEFAULT_CHECKPOINT
    scale: float = 1.0  # flow resolution of RIFE models: 0.5 for 1080p and larger
    # What computes RIFE in-betweens: openvino, ~2x torch's speed at the same frames
    # (docs/MODEL.md, "CPU runtime"); torch without the package (a warning says so).
    runtime: str = "openvino"
    tta: str = "none"  # test-time augmentation of RIFE models (vfi.inference.tta): 2-4x
    params: Path | None = None  # None: the built-in defaults, wherever the command runs
    overwrite: bool = False
    crf: int = 18
    threads: int = 1  # torch threads; 0 keeps torch's default (see run_interpolate)
    show_progress: bool = False


@dataclass
class Result:
    """Counts for the summary line."""

    out: Path
    rate: Fraction
    method: str
    retime: bool
    frames_in: int = 0
    frames_out: int = 0
    inbetweens: int = 0
    cuts: int = 0
    drawings: int = 0
    held: int = 0
    audio: bool = False
    seconds: float = 0.0
    note: str = ""  # e.g. the input ended early
    late_cuts: int = 0  # cuts the detector reported too late to honour (should be 0)
    scan: str = "progressive"  # how the input was decoded (pipeline.media.scan): telecine -> IVTC
    cut_frames: list[int] = field(default_factory=list)  # first frames of new scenes
    peak_frames: int = 0  # most input frames in memory at once
    holds: bool = True  # False: --holds off
    settings: str = DEFAULT_SETTINGS  # where cuts and triplets came from: --params FILE or not


def check_options(opts: Options) -> str:
    """Every check that needs no decoding; returns OUT's container format."""
    if opts.fps is None and not 2 <= opts.factor <= MAX_FACTOR:
        raise InterpolateError(f"--factor must be an integer from 2 to {MAX_FACTOR}, got {opts.factor}")
    if opts.fps is not None and opts.fps <= 0:
        raise InterpolateError(f"--fps must be positive, got {opts.fps}")
    if opts.threads < 0:
        raise InterpolateError(f"--threads must be >= 0, got {opts.threads}")
    if opts.holds not in HOLDS:
        raise InterpolateError(f"--holds must be one of {', '.join(HOLDS)}, got {opts.holds!r}")
    if opts.max_hold < 1:
        raise InterpolateError(f"--max-hold must be >= 1, got {opts.max_hold}")
    check_scale(opts.scale)
    if opts.method in PEERS and (opts.fps is not None or opts.factor != 2 or opts.retime):
        raise InterpolateError(f"--method {opts.method} makes middle frames only: use it with "
                               "--factor 2 and no --retime, or use --method model+hdv3 (its "
                               "other times come from the model)")
    if opts.runtime not in RUNTIMES:
        raise InterpolateError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {opts.runtime!r}")
    if not opts.src.is_file():
        raise InterpolateError(f"{opts.src}: no such file")
    try:
        fmt = container_format(opts.out)
    except ValueError as err:
        raise InterpolateError(str(err)) from None
    if opts.out.resolve() == opts.src.resolve():
        raise InterpolateError(f"{opts.out}: output would overwrite the input")
    if opts.out.exists() and not opts.overwrite:
        raise InterpolateError(f"{opts.out} exists; pass --overwrite to replace it")
    if opts.out.is_dir():
        raise InterpolateError(f"{opts.out} is a folder")
    _check_folder(opts.out)
    return fmt


def _check_folder(out: Path) -> None:
    """OUT's folder must exist and take a new file (where the temporary file goes)."""
    folder = out.parent
    if not folder.exists():
        raise InterpolateError(f"cannot write {out}: folder {folder} does not exist")
    if not folder.is_dir():
        raise InterpolateError(f"cannot write {out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InterpolateError(f"cannot write {out}: folder {folder} is not writable")


def choose_method(opts: Options) -> str:
    """The method to run: ``opts.method``, except that the default ``model`` with no
    checkpoint given and none trained (a fresh install, before ``dvc repro``) is the
    pretrained RIFE 4.25 it would have been fine-tuned from. A checkpoint given by
    path must exist (the model method says so when it does not)."""
    if opts.method == "model" and opts.checkpoint is None and not DEFAULT_CHECKPOINT.is_file():
        log.info("no checkpoint at %s (`dvc repro` trains one): using rife, the pretrained "
                 "RIFE 4.25", DEFAULT_CHECKPOINT)
        return "rife"
    return opts.method


def analysis_params(path: Path | None) -> tuple[CutsParams, TripletParams, str]:
    """``cuts``, ``triplets`` and the summary's name for them: from ``path`` when given,
    else the built-in defaults.

    Never an implicit ``./params.yaml``: the same command cuts a film the same way from
    any folder. Nothing is lost inside the repo, where the file holds the defaults.
    """
    if path is None:
        return CutsParams(), TripletParams(), DEFAULT_SETTINGS
    try:
        params = load_params(path)
    except ConfigError as err:
        raise InterpolateError(str(err)) from None
    return params.cuts, params.triplets, str(path)


def probe_input(src: Path) -> ProbeInfo:
    """The pipeline's probe: a video stream that demuxes whole and decodes."""
    try:
        info = probe(src)
    except ProbeError as err:
        raise InterpolateError(f"{src}: not a usable video: {err.reason}") from None
    if info.frames == 0:
        raise InterpolateError(f"{src}: the video has no frames")
    return info


def input_rate(info: ProbeInfo, decode: DecodeFilter = NO_FILTER) -> Fraction:
    """The rate of the frames the analysis sees, as an exact fraction (NTSC rates come
    out exact): the probe's average rate, times 4/5 after a 3:2 inverse telecine."""
    if info.fps <= 0:
        raise InterpolateError("the input has no frame rate; give the output rate with --fps")
    rate = Fraction(info.fps).limit_denominator(RATE_DENOMINATOR)
    return rate * Fraction(4, 5) if decode.pattern == "3:2" else rate


def input_scan(src: Path, info: ProbeInfo) -> DecodeFilter:
    """Inverse telecine or deinterlace, as the pipeline decodes such a source
    (``pipeline.media.scan``): in-betweens of field-blended frames would be blends twice over.
    Bars are kept: the output is the user's whole frame, bars and all."""
    found = scan_source(src, info.fps, info.frames, info.duration, crop_bars="off")
    return found.filter


class Renderer:
    """Makes the scheduled output frames from the frames kept, and writes them."""

    def __init__(self, writer: VideoWriter, method: Inbetween, bar: Progress) -> None:
        self.writer, self.method, self.bar = writer, method, bar
        self.images: dict[int, np.ndarray] = {}
        self.frames = self.inbetweens = 0
        self.peak = 0  # most input frames held at once: memory stays bounded

    def add(self, index: int, rgb: np.ndarray) -> None:
        self.images[index] = rgb
        self.peak = max(self.peak, len(self.images))

    def render(self, frames: list[OutFrame], needed: int | None) -> None:
        """Write ``frames`` (in order), then forget images before ``needed``."""
        for (a, b), group in itertools.groupby(frames, key=lambda f: (f.a, f.b)):
            group = list(group)
            if a == b:
                out = [self.images[a]] * len(group)
            else:
                out = self.method(self.images[a], self.images[b], [f.t for f in group])
                self.inbetweens += len(group)
            for rgb in out:
                self.writer.write(rgb)
            self.frames += len(group)
            self.bar.update(len(group))
        if needed is not None:
            for index in [i for i in self.images if i < needed]:
                del self.images[index]


class Pipeline:
    """Analysis window -> holds -> schedule -> renderer, for one input."""

    def __init__(self, cuts: CutsParams, triplets: TripletParams, size: tuple[int, int],
                 fps: float, schedule: Schedule, renderer: Renderer, holds: bool = True) -> None:
        self.meter = FrameMeter(size[0], size[1], cuts.analysis_size)
        self.window = CutWindow(cuts, fps)
        self.holds = SceneDrawings(triplets, enabled=holds)
        self.schedule, self.renderer = schedule, renderer
        self.cuts = 0
        self.cut_frames: list[int] = []
        self.late_revisions = 0  # drift-revised frames already scheduled (kept as a hold)

    def push(self, index: int, pts: Fraction, rgb: np.ndarray) -> None:
        measured = self.meter.measure(index, pts, rgb)
        self.late_revisions += self.window.revise(self.holds.judge(measured))
        self.renderer.add(index, rgb)
        self._schedule(self.window.push(measured, self.meter.small))

    def _schedule(self, final: list[Measured]) -> None:
        for frame in final:
            self.cuts += int(frame.cut)
            if frame.cut:
                self.cut_frames.append(frame.index)
            scene, drawing = self.holds.push(frame)
            out = self.schedule.push(SourceFrame(frame.index, frame.pts, scene, drawing))
            self.renderer.render(out, self.schedule.needed)

    def finish(self, end: Fraction) -> None:
        self._schedule(self.window.finish())
        self.renderer.render(self.schedule.finish(end), None)


def _snap(pts: float, base: Fraction | None) -> Fraction:
    """A float pts as an exact time: the nearest tick of the stream's time base."""
    if not base:
        return Fraction(pts).limit_denominator(1_000_000)
    return round(Fraction(pts) / base) * base


def _stream(opts: Options, info: ProbeInfo, cuts: CutsParams, triplets: TripletParams,
            writer_for: Callable[[tuple[int, int]], VideoWriter], method: Inbetween, result: Result,
            decode: DecodeFilter = NO_FILTER) -> None:
    """Decode (through ``decode``), analyse, schedule, render: the one pass over the input."""
    rate_in = input_rate(info, decode)
    try:
        reader = open_reader(opts.src, max(info.width, info.height), cuts.reader,
                             codec=info.codec, frames=info.frames, decode=decode)
    except ReaderError as err:
        raise InterpolateError(f"{opts.src}: {err.reason}") from None
    expected = round(decode.out_frames(info.frames) / rate_in * result.rate)
    with reader, writer_for(reader.size) as writer, progress(
            total=expected, unit="frame", desc="interpolate", enabled=opts.show_progress) as bar:
        renderer = Renderer(writer, method, bar)
        schedule = Schedule(result.rate, opts.retime, opts.max_hold)
        pipe = Pipeline(cuts, triplets, reader.size, float(rate_in), schedule, renderer,
                        holds=opts.holds == "auto")
        last = None
        for frame in reader:
            pts = _snap(frame.pts, reader.info.time_base)
            if last is not None and pts <= last:  # repeated or backwards pts (a bad file)
                pts = last + 1 / rate_in
            pipe.push(frame.index, pts, frame.rgb)
            last = pts
        if last is None:
            raise InterpolateError(f"{opts.src}: no frame decoded ({reader.error or 'empty stream'})")
        pipe.finish(last + 1 / rate_in)
        result.frames_in, result.note = reader.frames_read, reader.error
        result.frames_out, result.inbetweens = renderer.frames, renderer.inbetweens
        result.cuts, result.late_cuts = pipe.cuts, pipe.window.late
        result.cut_frames = pipe.cut_frames
        result.drawings, result.held = pipe.holds.drawing + 1, pipe.holds.held
        result.peak_frames = renderer.peak


def run_interpolate(opts: Options, method: Inbetween | None = None) -> Result:
    """Check, then stream ``opts.src`` into ``opts.out``; InterpolateError on bad input.

    ``method`` overrides ``opts.method`` (tests and benchmarks pass a function).
    """
    start = time.perf_counter()
    fmt = check_options(opts)
    if opts.threads > 0:
        # One thread by default: on 2 shared cores, two torch threads spin-waiting on
        # each other ran the model ~20x slower under load than one (measured: 31 s
        # vs 1.3 s for the tiny-checkpoint test clip, with other jobs running).
        torch.set_num_threads(opts.threads)
    cuts, triplets, settings = analysis_params(opts.params)
    name = opts.method
    if method is None:  # a MethodError or CheckpointError says what to do (exit 2)
        name = choose_method(opts)
        options = MethodOptions(checkpoint=opts.checkpoint, scale=opts.scale, runtime=opts.runtime,
                                tta=opts.tta)
        method = make_method(name, options).frames
    info = probe_input(opts.src)
    decode = input_scan(opts.src, info)
    rate = output_rate(input_rate(info, decode), opts.factor, opts.fps)
    offset = audio_offset(opts.src)
    result = Result(opts.out, rate, name, opts.retime, audio=offset is not None, scan=decode.scan,
                    settings=settings, holds=opts.holds == "auto")
    try:
        with atomic_path(opts.out) as tmp:
            def writer_for(size: tuple[int, int]) -> VideoWriter:
                return VideoWriter(tmp, fmt, size[0], size[1], rate, opts.crf,
                                   audio_from=opts.src if result.audio else None,
                                   audio_offset=offset or 0.0)
            _stream(opts, info, cuts, triplets, writer_for, method, result, decode)
    except (av.FFmpegError, OSError) as err:
        raise InterpolateError(f"{opts.out}: writing failed: {err}") from err
    result.seconds = time.perf_counter() - start
    return result


def summary(result: Result) -> str:
    """One line: frames in and out, rate, cuts, holds, in-betweens, the cut and hold
    settings used (a different params file cuts differently), time, speed."""
    speed = result.frames_out / result.seconds if result.seconds > 0 else 0.0
    how = result.method + (", retimed" if result.retime else "") + ("" if result.holds else ", holds off")
    scan = {"telecine": " (inverse telecined)", "interlaced": " (deinterlaced)"}.get(result.scan, "")
    line = (f"interpolate: {result.frames_in} frames in{scan} -> {result.frames_out} out at "
            f"{float(result.rate):.6g} fps ({how}); {result.cuts} cuts, {result.held} held "
            f"frames in {result.drawings} drawings, {result.inbetweens} in-betweens"
            f"{', audio kept' if result.audio else ''}; settings: {result.settings}; "
            f"{result.seconds:.1f} s "
            f"({speed:.1f} frames/s) -> {result.out}")
    if result.note:
        line += f"\n  note: the input ended early: {result.note}"
    return line
