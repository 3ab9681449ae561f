"""Benchmark the networks: parameters, training samples/s and inference ms per frame on CPU.

Training on random tensors, no data loading: what one optimizer step (forward, losses,
backward, AdamW) costs per sample at the training crop, with 1 and 2 torch threads
(small convolutions often run faster on one thread than two on a 2-core machine,
because the work per op is too small to split).

Inference on a 480p (854x480) pair of cartoon drawings from the synthetic source, in
ms per interpolated frame, with 1 and 2 torch threads: each network (``params.yaml``'s
model section, arch varied) through :func:`vfi.inference.interpolate` (padding included,
and the classical flows the flow model starts from unless ``flow_init: zero``), next
to the evaluation's baselines in the same run: DIS flow (both ways, warp, blend;
``dis`` of :mod:`vfi.inference.methods`) and the linear blend.

    python benchmarks/bench_model.py [--arch flow unet --crop 96 --batch 4 --steps 10]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pipeline.synth import SynthSpec, plan_set
from pipeline.synth.render import clip_frames
from vfi.config import ModelParams, TrainParams, load_vfi_params
from vfi.inference.methods import Blend, Dis, Model
from vfi.nets import build_model, param_count
from vfi.training.losses import total_loss

Frames = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # f0, f2, t


def train_rate(model_params: ModelParams, crop: int, batch: int, steps: int, threads: int
               ) -> float:
    """Training samples/s (after one warm-up step)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(model_params)
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


def cartoon_pair(width: int, height: int) -> Frames:
    """Drawings 0 and 2 of a synthetic shot (a triplet's ends), as 3 x H x W floats."""
    spec = SynthSpec(clips=1, width=width, height=height, seconds=2.0, static_prob=0.0,
                     repeat_prob=0.0)
    drawings = clip_frames(plan_set(spec).clips[0], width, height)
    images = [next(drawings)[0] for _ in range(3)]
    f0, f2 = (torch.from_numpy(images[i].copy()).permute(2, 0, 1).float() / 255 for i in (0, 2))
    return f0, f2, torch.tensor(0.5)


def infer_ms(method: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
             frames: Frames, repeat: int) -> float:
    """Milliseconds per interpolated frame (after one warm-up call)."""
    method(*frames)
    start = time.perf_counter()
    for _ in range(repeat):
        method(*frames)
    return 1000 * (time.perf_counter() - start) / repeat


def inference_table(models: dict[str, ModelParams], dis_preset: str, size: tuple[int, int],
                    repeat: int, threads: int) -> dict[str, float]:
    """ms per frame at ``size`` of each network and of the DIS and blend baselines."""
    torch.set_num_threads(threads)
    frames = cartoon_pair(*size)
    methods = {f"model {name}": Model(build_model(mp).eval())  # vfi.inference.interpolate
               for name, mp in models.items()}
    methods["dis"] = Dis(dis_preset)
    methods["blend"] = Blend()
    return {name: infer_ms(method, frames, repeat) for name, method in methods.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="model and eval sections (missing file: the defaults)")
    parser.add_argument("--arch", nargs="+", default=["flow", "unet"])
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(854, 480), metavar=("W", "H"))
    parser.add_argument("--frames", type=int, default=5, help="timed inference frames")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads for inference")
    args = parser.parse_args()
    params = load_vfi_params(args.params)
    models = {arch: params.model.model_copy(update={"arch": arch}) for arch in args.arch}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for arch, mp in models.items():
        count = param_count(build_model(mp))
        rates = {n: train_rate(mp, args.crop, args.batch, args.steps, n) for n in (1, 2)}
        print(f"{arch}: {count:,} params; train {args.crop}px batch {args.batch}: "
              f"{rates[1]:.1f} samples/s (1 thread), {rates[2]:.1f} (2 threads)")
    width, height = args.size
    print(f"inference {width}x{height}, flow_init {params.model.flow_init}, DIS "
          f"{params.eval.dis_preset}, ms per frame with {args.threads} torch threads:")
    tables = [inference_table(models, params.eval.dis_preset, (width, height), args.frames, n)
              for n in args.threads]
    for name in tables[0]:
        print(f"  {name:12s}" + "".join(f"{table[name]:9.1f}" for table in tables))


if __name__ == "__main__":
    main()
