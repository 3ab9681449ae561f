"""Benchmark ``inbetweener interpolate`` at 480p against FFmpeg's ``minterpolate``.

One synthetic 854x480 clip (cuts, ones/twos/threes), doubled in frame rate by:

- ``interpolate --method blend`` and ``--method model`` (``models/model.pt`` when it
  exists, else what ``interpolate`` then runs: pretrained RIFE 4.25, the same network),
  end to end: probe, decode, analysis, in-betweens, H.264 encode; the model with each
  ``--runtime`` (``openvino``, the default, includes compiling its graph once);
- FFmpeg's ``minterpolate`` (motion-compensated, its defaults) on the same clip through
  PyAV's bundled libavfilter (``av.filter.Graph``, no ffmpeg binary), decoded and
  encoded with the same x264 settings, so the three do the same I/O.

Prints output frames/s, wall and CPU (``process_time``: all threads of this process;
the steadier figure on a shared machine), and each method's ratio to minterpolate.

    python benchmarks/bench_interpolate.py [--seconds 4 --threads 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from pipeline.synth import SynthSpec, generate
from vfi.app.interpolate import Options, run_interpolate
from vfi.app.writer import VideoWriter
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT


def timed(run: Callable[[], int]) -> tuple[float, float]:
    """(wall, cpu) output frames/s of ``run``, which returns the frames it wrote."""
    wall, cpu = time.perf_counter(), time.process_time()
    frames = run()
    return frames / (time.perf_counter() - wall), frames / (time.process_time() - cpu)


def minterpolate(src: Path, out: Path, factor: int) -> int:
    """``-vf minterpolate=fps=factor*rate`` through PyAV's filter graph; frames written."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate) * factor
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=stream),
                 graph.add("minterpolate", f"fps={rate.numerator}/{rate.denominator}"),
                 graph.add("buffersink")]
        chain[0].link_to(chain[1])
        chain[1].link_to(chain[2])
        graph.configure()
        with VideoWriter(out, "mp4", stream.width, stream.height, rate) as writer:
            for frame in container.decode(stream):
                graph.push(frame)
                _drain(graph, writer)
            graph.push(None)
            _drain(graph, writer)
            return writer.frames


def _drain(graph: av.filter.Graph, writer: VideoWriter) -> None:
    """Write every frame the graph has ready."""
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
        writer.write(frame.to_ndarray(format="rgb24"))


def model_checkpoint() -> tuple[Path | None, str]:
    """The trained checkpoint, or None: ``interpolate`` then falls back to ``rife``."""
    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT, f"trained, {DEFAULT_CHECKPOINT}"
    return None, f"pretrained RIFE 4.25 (no {DEFAULT_CHECKPOINT})"


def ours(src: Path, out: Path, method: str, checkpoint: Path | None, threads: int,
         runtime: str = "torch") -> int:
    result = run_interpolate(Options(src=src, out=out, method=method, checkpoint=checkpoint,
                                     overwrite=True, threads=threads, runtime=runtime))
    return result.frames_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts to time the model with")
    parser.add_argument("--runtimes", nargs="+", default=["torch", "openvino"],
                        help="interpolate --runtime values to time the model with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = SynthSpec(clips=1, seed=0, width=854, height=480, seconds=args.seconds,
                         static_prob=0.0, repeat_prob=0.0, min_shot_seconds=1.0)
        src = generate(spec, folder / "clip").videos[0]
        checkpoint, what = model_checkpoint()
        out = folder / "out.mp4"
        rates = {"minterpolate": timed(lambda: minterpolate(src, out, 2))}
        rates["blend"] = timed(lambda: ours(src, out, "blend", checkpoint, 1))
        for n in args.threads:
            for rt in args.runtimes:
                rates[f"model, {rt}, {n} thread(s)"] = timed(
                    lambda n=n, rt=rt: ours(src, out, "model", checkpoint, n, rt))
    ref_wall, ref_cpu = rates["minterpolate"]
    print(f"854x480, {spec.clip_frames} frames at {spec.fps} fps -> x2; model: {what}")
    print(f"{'method':31s} {'wall fps':>9s} {'cpu fps':>9s} {'x minterp (wall)':>17s} {'(cpu)':>7s}")
    for name, (wall, cpu) in rates.items():
        print(f"{name:31s} {wall:9.2f} {cpu:9.2f} {wall / ref_wall:17.2f} {cpu / ref_cpu:7.2f}")


if __name__ == "__main__":
    main()
