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

Then the compute bound: the network's floating-point work per in-between (torch's flop
counter at the padded size), this core's one-thread matrix-multiply rate measured in the
same run (the most a conv network gets out of it), and the ratio to minterpolate the
model could reach if every in-between ran at that rate, on top of what ``blend`` takes
(decode, analysis, encode).

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
import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.synth import SynthSpec, generate
from vfi.app.interpolate import Options, run_interpolate
from vfi.app.writer import VideoWriter
from vfi.config import ModelParams
from vfi.inference.checkpoint import DEFAULT_CHECKPOINT, load_model
from vfi.nets import build_model, pad_to_multiple


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
         runtime: str = "torch", seen: dict[str, int] | None = None) -> int:
    result = run_interpolate(Options(src=src, out=out, method=method, checkpoint=checkpoint,
                                     overwrite=True, threads=threads, runtime=runtime))
    if seen is not None:
        seen["inbetweens"] = result.inbetweens
    return result.frames_out


def network_flops(checkpoint: Path | None, width: int, height: int) -> float:
    """Floating-point operations of one in-between at ``width`` x ``height`` (padded)."""
    model = (load_model(checkpoint) if checkpoint else build_model(ModelParams(arch="rife"))).eval()
    frame, _ = pad_to_multiple(torch.rand(1, 3, height, width), model.multiple)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(frame, frame, torch.full((1, 1, 1, 1), 0.5))
    return float(counter.get_total_flops())


def matmul_rate(n: int = 2048, repeat: int = 5) -> float:
    """FLOP/s of one-thread float32 matrix multiplication, best of ``repeat``."""
    torch.set_num_threads(1)
    a, b = torch.rand(n, n), torch.rand(n, n)
    best = float("inf")
    for _ in range(repeat + 1):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def compute_bound(frames: int, ref_wall: float, blend_wall: float, inbetweens: int,
                  flops: float, rate: float) -> None:
    """Print the ratio the model would reach with every in-between at ``rate``."""
    seconds = frames / blend_wall + inbetweens * flops / rate
    print(f"compute bound: {flops / 1e9:.1f} GFLOP per in-between, {inbetweens} in-betweens; "
          f"matmul {rate / 1e9:.0f} GFLOP/s (1 thread) -> {flops / rate * 1000:.0f} ms each; "
          f"at that rate the model would reach {frames / seconds / ref_wall:.2f}x minterpolate")


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
        seen: dict[str, int] = {}
        for n in args.threads:
            for rt in args.runtimes:
                rates[f"model, {rt}, {n} thread(s)"] = timed(
                    lambda n=n, rt=rt: ours(src, out, "model", checkpoint, n, rt, seen))
        rate = matmul_rate()
    ref_wall, ref_cpu = rates["minterpolate"]
    print(f"854x480, {spec.clip_frames} frames at {spec.fps} fps -> x2; model: {what}")
    print(f"{'method':31s} {'wall fps':>9s} {'cpu fps':>9s} {'x minterp (wall)':>17s} {'(cpu)':>7s}")
    for name, (wall, cpu) in rates.items():
        print(f"{name:31s} {wall:9.2f} {cpu:9.2f} {wall / ref_wall:17.2f} {cpu / ref_cpu:7.2f}")
    frames = 2 * spec.clip_frames
    compute_bound(frames, ref_wall, rates["blend"][0], seen["inbetweens"],
                  network_flops(checkpoint, spec.width, spec.height), rate)


if __name__ == "__main__":
    main()
