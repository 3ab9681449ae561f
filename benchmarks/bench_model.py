"""Benchmark the networks: parameters, training samples/s and inference frames/s on CPU.

Random tensors, no data loading: what one optimizer step (forward, losses, backward,
AdamW) costs per sample at the training crop, with 1 and 2 torch threads (small
convolutions often run faster on one thread than two on a 2-core machine, because
the work per op is too small to split), and the inference wrapper at 320x240.

    python benchmarks/bench_model.py [--arch flow unet --crop 96 --batch 4 --steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from vfi.config import ModelParams, TrainParams
from vfi.losses import total_loss
from vfi.model import build_model, interpolate, param_count


def train_rate(arch: str, crop: int, batch: int, steps: int, threads: int) -> float:
    """Training samples/s (after one warm-up step)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelParams(arch=arch))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = {k: torch.rand(batch, 3, crop, crop) for k in ("f0", "f1", "f2")}
    data["t"] = torch.rand(batch)
    weights = TrainParams().losses

    def step() -> None:
        loss, _ = total_loss(weights, data, model(data["f0"], data["f2"], data["t"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def infer_rate(arch: str, frames: int = 10) -> float:
    """Frames/s of :func:`interpolate` at 320x240 (padded to the model's multiple)."""
    model = build_model(ModelParams(arch=arch))
    f0, f2 = torch.rand(3, 240, 320), torch.rand(3, 240, 320)
    interpolate(model, f0, f2, 0.5)
    start = time.perf_counter()
    for _ in range(frames):
        interpolate(model, f0, f2, 0.5)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", nargs="+", default=["flow", "unet"])
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    for arch in args.arch:
        params = param_count(build_model(ModelParams(arch=arch)))
        rates = {n: train_rate(arch, args.crop, args.batch, args.steps, n) for n in (1, 2)}
        print(f"{arch}: {params:,} params; train {args.crop}px batch {args.batch}: "
              f"{rates[1]:.1f} samples/s (1 thread), {rates[2]:.1f} (2 threads); "
              f"inference 320x240: {infer_rate(arch):.1f} frames/s")


if __name__ == "__main__":
    main()
