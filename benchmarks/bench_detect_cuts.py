"""Benchmark detect_cuts: the full analysis pass against decode-only, same reader, same run.

For each clip and reader backend it measures, best of ``--repeat``, each run inside a
guarded worker process exactly like the stage's (same fork server, same environment):

- decode-only: iterate the reader at analysis size (the floor: every frame must decode);
- analysis: ``analyse_source`` (decode + detector + hashes + stats + thumbs);
- hashes: ``frame_hashes`` alone, and imagehash (the reference it replaces), on the
  decoded frames.

It prints frames/s for each and the ratio analysis / decode-only (1.0 = analysis is
free on top of decoding). Wall and CPU (``process_time``, all threads of the worker)
frames/s are both shown: on a shared machine the CPU figure is the steadier one.
Clips: a synthetic 320x240 H.264 set, and, when /work/shared/data exists, the HEVC
Popeye clip (1440x1074) at analysis size 192.

    python benchmarks/bench_detect_cuts.py [--clips 3 --seconds 10 --repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.config import CutsParams
from pipeline.detect_cuts import PRELOAD, SourceJob, analyse_source
from pipeline.guard import run_guarded
from pipeline.hashing import frame_hashes, reference_hashes
from pipeline.probe import probe
from pipeline.synth import SynthSpec, generate
from pipeline.video import open_reader

POPEYE = Path("/work/shared/data/popeye_sindbad_part2.mkv")


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


def analysis(job: SourceJob, params: CutsParams) -> int:
    result = analyse_source(job, params)
    assert result.reader == job.backend and not result.error, (result.reader, result.error)
    return result.frames


def hashes(path: Path, size: int) -> tuple[float, float, int]:
    """Seconds for frame_hashes and for imagehash over the clip's analysis frames."""
    with open_reader(path, size, "pyav") as reader:
        greys = [np.asarray(Image.fromarray(f.rgb).convert("L")) for f in reader]
    start = time.perf_counter()
    for grey in greys:
        frame_hashes(grey)
    fast = time.perf_counter() - start
    images = [Image.fromarray(g) for g in greys]
    start = time.perf_counter()
    for image in images:
        reference_hashes(image)
    return fast, time.perf_counter() - start, len(greys)


def bench_clip(label: str, path: Path, size: int, repeat: int) -> None:
    info = probe(path)
    print(f"\n{label}: {info.codec} {info.width}x{info.height}, {info.frames} frames, "
          f"analysis short side {size}")
    params = CutsParams(analysis_size=size)
    for backend in ("pyav", "decord"):
        job = SourceJob(path.stem, str(path), info.codec, info.frames, info.fps, backend)
        dw, dc, n = best_of(repeat, decode_only, path, size, backend, info.codec, info.frames)
        aw, ac, m = best_of(repeat, analysis, job, params)
        assert n == m, (n, m)
        print(f"  {backend:6s} decode-only {n / dw:6.0f} fps (cpu {n / dc:6.0f})   "
              f"analysis {m / aw:5.0f} fps (cpu {m / ac:5.0f})   "
              f"ratio analysis/decode {dw / aw:.2f} (cpu {dc / ac:.2f})")
    got = run_guarded(hashes, (path, size), 3600.0, preload=PRELOAD)
    assert got.ok, got.error
    fast, reference, frames = got.value
    print(f"  hashes: frame_hashes {1000 * fast / frames:.3f} ms/frame, imagehash "
          f"{1000 * reference / frames:.3f} ms/frame ({reference / fast:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=CutsParams().analysis_size)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = SynthSpec(clips=args.clips, seconds=args.seconds, width=320, height=240)
        for video in generate(spec, Path(tmp), name="bench").videos:
            bench_clip(f"synthetic {video.stem}", video, args.size, args.repeat)
    if POPEYE.is_file():
        bench_clip(f"popeye {POPEYE.name}", POPEYE, 192, max(1, args.repeat - 1))
    else:
        print(f"\n{POPEYE} not found: real-footage figures skipped")


if __name__ == "__main__":
    main()
