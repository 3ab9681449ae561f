"""Benchmark the synthetic source: generate() frames/s against encode-only frames/s.

The reference is measured in the same run: the same clips are rendered into memory
first, then only the encoding (same writer, same held-frame reuse) is timed. The ratio
generate / encode-only says how much rendering costs on top of the unavoidable encode.
Runs alternate and the best of ``--repeat`` is kept, wall clock and CPU time both, so a
busy shared machine disturbs the ratio less.

    python benchmarks/bench_synth.py [--clips 6 --width 320 --height 240 --seconds 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipeline.synth import SynthSpec, generate, plan_set
from pipeline.synth.encode import X264_PRESET, X264_THREADS, H264Writer
from pipeline.synth.render import clip_frames


def clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds; CPU time counts the encoder's threads too."""
    return time.perf_counter(), time.process_time()


def time_generate(spec: SynthSpec, out_dir: Path) -> tuple[float, float, int, list[int]]:
    """Wall and CPU seconds of generate(), frames written, bytes per clip."""
    wall0, cpu0 = clocks()
    out = generate(spec, out_dir, name="bench")
    wall1, cpu1 = clocks()
    return wall1 - wall0, cpu1 - cpu0, len(out.truth), [v.stat().st_size for v in out.videos]


def time_encode_only(spec: SynthSpec, out_dir: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds spent encoding pre-rendered clips (rendering excluded), frames.

    One clip is held in memory at a time, so the reference stays affordable.
    """
    wall, cpu, frames = 0.0, 0.0, 0
    for index, clip in enumerate(plan_set(spec).clips):
        drawings = list(clip_frames(clip, spec.width, spec.height))
        path = out_dir / f"encode-{index:02d}.mp4"
        wall0, cpu0 = clocks()
        with H264Writer(path, spec.width, spec.height, spec.fps, spec.crf) as writer:
            for image, count in drawings:
                writer.write(image, count)
        wall1, cpu1 = clocks()
        wall, cpu, frames = wall + wall1 - wall0, cpu + cpu1 - cpu0, frames + writer.frames
    return wall, cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = SynthSpec(clips=args.clips, width=args.width, height=args.height, seconds=args.seconds, seed=args.seed)
    gen, enc = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            gen.append(time_generate(spec, Path(tmp) / "gen"))
            enc.append(time_encode_only(spec, Path(tmp)))
    frames, sizes = gen[0][2], gen[0][3]
    gen_wall, gen_cpu = min(g[0] for g in gen), min(g[1] for g in gen)
    enc_wall, enc_cpu = min(e[0] for e in enc), min(e[1] for e in enc)
    print(f"spec: {spec.clips} clips x {spec.seconds:g} s, {spec.width}x{spec.height} @ {spec.fps} fps, "
          f"crf {spec.crf}, x264 preset {X264_PRESET}, threads {X264_THREADS}; best of {args.repeat}")
    print(f"generate (render + encode): {frames / gen_wall:.0f} frames/s wall, {frames / gen_cpu:.0f} frames/CPU-s "
          f"({frames / gen_wall / spec.fps:.1f}x real time)")
    print(f"encode only (reference):    {frames / enc_wall:.0f} frames/s wall, {frames / enc_cpu:.0f} frames/CPU-s")
    print(f"ratio generate / encode-only: {enc_wall / gen_wall:.2f} wall, {enc_cpu / gen_cpu:.2f} CPU")
    print(f"bytes per clip: mean {sum(sizes) / len(sizes):.0f}, min {min(sizes)}, max {max(sizes)} "
          f"({sum(sizes) * 8 / (frames / spec.fps) / 1000:.0f} kbit/s)")


if __name__ == "__main__":
    main()
