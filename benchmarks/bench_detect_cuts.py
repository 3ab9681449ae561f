"""Benchmark detect_cuts: the full analysis pass against decode-only, same reader, same run.

For each clip and reader backend it measures, best of ``--repeat``, each run inside a
guarded worker process exactly like the stage's (same fork server, same environment):

- decode-only: iterate the reader at analysis size (the floor: every frame must decode);
- analysis: ``analyse_source`` with the default params (decode + the default cut
  stream + hashes, stats, thumbnails and the hold features), its work spread three
  ways (``threads`` of ``pipeline.analysis.worker._detect``): inline on the decoding
  thread (0), the cut stream and the features on one helper thread (1), the features
  measured on a second one (2, the default);

and prints frames/s for each and the ratio decode-only time / analysis time (1.0 =
analysis is free on top of decoding; the target is >= 0.8 at 480p and up). Both runs
use the same reader with the same decoder threads; the helper threads overlap the
analysis with decoding, so the wall ratio shows the overlap and the CPU ratio the total
work, which threads do not reduce. Wall and CPU (``process_time``, all threads of the
worker) are both shown: on a shared machine the CPU figure is the steadier one. The
"auto" line holds this run's default-threads figures of both readers against the table
``reader: auto`` follows (``pipeline.media.video.AUTO_MEASURED``) and says which reader
this run would choose. Then, on the decoded frames in memory, where the
time on top of decoding goes, in ms per frame: the per-frame features (``FrameFeatures.add``;
inline, and on its helper thread, which only pays off while a decoder runs beside it),
each cut stream (``combined`` with its network windows, ``content``), and TransNetV2 on
every frame (``transnet``, the reference it avoids).

Clips: one synthetic 320x240 H.264 clip (reference, below 480p) and the real clips in
``data/real``: the Popeye 1440x1074 HEVC excerpt, the 574x480 H.264 Steamboat Willie
crop, the 1280x720 VP8 Big Buck Bunny second.

    OMP_NUM_THREADS=1 python benchmarks/bench_detect_cuts.py [--repeat 3] [--no-components]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.analysis.detectors import make_cut_stream
from pipeline.analysis.features import FrameFeatures
from pipeline.analysis.transnet import TransNet
from pipeline.analysis.worker import PRELOAD, SourceJob, analyse_source
from pipeline.core.config import CutsParams
from pipeline.core.guard import run_guarded
from pipeline.media.probe import probe
from pipeline.media.video import (
    AUTO_MEASURED,
    auto_backends,
    choose_backend,
    open_reader,
)
from pipeline.synth import SynthSpec, generate

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CLIPS = ("popeye_sindbad_part2.mkv", "steamboat_willie_excerpt_cropped.mp4",
         "big_buck_bunny_432_433.webm")


def timed(fn: Callable[..., int], *args: object) -> tuple[float, float, int]:
    """(wall s, CPU s, frames) of one call; runs inside the worker."""
    wall, cpu = time.perf_counter(), time.process_time()
    frames = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, frames


def best_of(repeat: int, fn: Callable[..., int], *args: object) -> tuple[float, float, int]:
    """Best wall and CPU seconds of ``repeat`` guarded runs of ``fn(*args)``, and frames."""
    runs = []
    for _ in range(repeat):
        got = run_guarded(timed, (fn, *args), 3600.0, preload=PRELOAD)
        assert got.ok, got.error
        runs.append(got.value)
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def decode_only(path: Path, size: int, backend: str, codec: str, frames: int) -> int:
    with open_reader(path, size, backend, codec=codec, frames=frames) as reader:
        count = sum(1 for _ in reader)
        assert reader.name == backend, f"{backend} fell back: {reader.note}"
    return count


def analysis(job: SourceJob, params: CutsParams, threads: int) -> int:
    result = analyse_source(job, params, threads)
    assert result.reader == job.backend and not result.error, (result.reader, result.error)
    return result.frames


def components(path: Path, size: int) -> dict[str, float]:
    """ms per frame of each part of the analysis on top of decoding (frames in memory)."""
    with open_reader(path, size, "pyav") as reader:
        frames = list(reader)
    out: dict[str, float] = {}
    for name, threaded in (("features", False), ("features threaded", True)):
        start = time.perf_counter()
        features = FrameFeatures(CutsParams().thumb_size, threaded=threaded)
        for frame in frames:
            features.add(frame, 0.0)
        features.arrays()  # waits for the helper thread
        out[name] = time.perf_counter() - start
    net = TransNet()
    for detector in ("combined", "content", "transnet"):
        stream = make_cut_stream(CutsParams(detector=detector), 24.0, net)
        start = time.perf_counter()
        for frame in frames:
            stream.push(frame.rgb, frame.pts)
        stream.finish()
        out[detector] = time.perf_counter() - start
        if detector == "combined":
            out["combined net windows"] = float(getattr(stream, "net_calls", 0)) * len(frames) / 1000
    return {k: 1000 * v / len(frames) for k, v in out.items()}


def print_auto(codec: str, measured: dict[str, tuple[float, float]]) -> None:
    """What ``reader: auto`` reads ``codec`` with (its table), and what this run says."""
    table = AUTO_MEASURED.get(codec, {})
    run = auto_backends({codec: measured}).get(codec, "pyav") if len(measured) == 2 else "pyav"
    print(f"  auto   reads {codec} with {choose_backend(codec)}; table (wall, cpu fps) "
          f"{table or 'none'}; this run {measured} -> {run}", flush=True)


def bench_clip(label: str, path: Path, size: int, repeat: int, parts: bool) -> None:
    info = probe(path)
    print(f"\n{label}: {info.codec} {info.width}x{info.height}, {info.frames} frames, "
          f"analysis short side {size}, detector {CutsParams().detector}")
    params = CutsParams(analysis_size=size)
    measured: dict[str, tuple[float, float]] = {}
    for backend in ("pyav", "decord"):
        with open_reader(path, size, backend, codec=info.codec, frames=info.frames) as reader:
            if reader.name != backend:  # e.g. decord on VP8: the reader's own rule
                print(f"  {backend:6s} not used here: {reader.note}")
                continue
        job = SourceJob(path.stem, str(path), info.codec, info.frames, info.fps, backend)
        dw, dc, n = best_of(repeat, decode_only, path, size, backend, info.codec, info.frames)
        print(f"  {backend:6s} decode-only {n / dw:6.0f} fps (cpu {n / dc:6.0f})", flush=True)
        for how, threads in (("inline", 0), ("1 thread", 1), ("2 threads", 2)):
            aw, ac, m = best_of(repeat, analysis, job, params, threads)
            assert n == m, (n, m)
            print(f"         analysis {how:9s} {m / aw:5.0f} fps (cpu {m / ac:5.0f})   "
                  f"ratio decode/analysis {dw / aw:.2f} (cpu {dc / ac:.2f})", flush=True)
        measured[backend] = (round(m / aw), round(m / ac))  # the default: THREADS
    print_auto(info.codec, measured)
    if parts:
        got = run_guarded(components, (path, size), 3600.0, preload=PRELOAD)
        assert got.ok, got.error
        print("  on top of decoding, ms/frame: " + ", ".join(
            f"{k} {v:.2f}" for k, v in got.value.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=CutsParams().analysis_size)
    parser.add_argument("--no-components", dest="parts", action="store_false")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), help="files in data/real")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        spec = SynthSpec(clips=1, seconds=args.seconds, width=320, height=240)
        for video in generate(spec, Path(tmp), name="bench").videos:
            bench_clip(f"synthetic {video.stem}", video, args.size, args.repeat, args.parts)
    for name in args.clips:
        path = REAL / name
        if not path.is_file():
            raise SystemExit(f"{path}: missing (the real clips are committed to git)")
        bench_clip(name, path, args.size, max(1, args.repeat - 1), args.parts)


if __name__ == "__main__":
    main()
