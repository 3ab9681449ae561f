"""Benchmark training against its data: train samples/s vs loader samples/s, same crop.

Shards are made by the shard stage from synthetic 512x384 clips (stored at 342x256, as
``bench_loader.py`` does), in a temporary folder; model and train params come from
``params.yaml`` (the defaults the pipeline trains with). Measured in one run:

- **loader**: :func:`vfi.training.samples.train_samples`, the stream the train loop draws from
  (decode, the classical teacher flows on the whole frame when the model starts from
  them: :func:`vfi.inference.interpolator.classical_flow`, DIS and its refinements; the motion-seeking
  crop, flips, reversal), and the same stream without the teacher, to show its cost;
- **train**: :func:`vfi.training.loop.optimizer_step` on that stream (the train loop's step:
  it loads its samples inline, in the same process);
- **compute only**: the same step on samples drawn beforehand (forward, losses,
  backward, AdamW).

Each with ``train.threads`` torch threads and with one: on 2 cores shared with other
work, small tensor ops on two threads wait for each other. The loader should reach 3x
the train rate (loading then takes at most a third of a step). On a shared machine the
best of ``--repeat`` interleaved rounds is printed; the load average comes first.

    python benchmarks/bench_train.py [--params params.yaml --steps 6 --repeat 2]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from bench_shard import pseudo_triplets, synthetic_sources

from pipeline.core.config import ShardParams
from pipeline.dataset.manifest import shards_for_split
from pipeline.dataset.shards import run_shard
from vfi.config import VfiParams, load_vfi_params
from vfi.flow.dis import DisFlow
from vfi.inference.interpolator import classical_flow, needs_init
from vfi.nets import build_model
from vfi.training.loop import lr_at, optimizer_step
from vfi.training.samples import train_samples

Stream = Iterator[dict[str, Any]]


def build_shards(root: Path, clips: int, seconds: float) -> list[str]:
    """Train shards made by the shard stage from synthetic clips."""
    sources = synthetic_sources(root / "raw", clips, seconds)
    pseudo_triplets(sources, root / "triplets")
    run_shard(ShardParams(contact_sheet=0), root / "raw", root / "triplets", root / "shards")
    return shards_for_split(root / "shards", "train")


def teacher_of(params: VfiParams) -> DisFlow | None:
    """The classical flow the train loop gives its stream (as :func:`vfi.training.loop.train`)."""
    wants = needs_init(build_model(params.model)) or params.train.losses.get("distill")
    return classical_flow(params.model) if wants else None


def best_rates(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """The best of ``repeat`` rounds of every run (rounds interleave the runs, so a busy
    spell on a shared machine does not fall on one of them only)."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeat):
        for name, run in runs.items():
            best[name] = max(best[name], run())
    return best


def with_threads(threads: int, run: Callable[[], float]) -> Callable[[], float]:
    """``run`` with ``threads`` torch threads, the setting restored afterwards."""
    def wrapped() -> float:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return run()
        finally:
            torch.set_num_threads(before)
    return wrapped


def loader_rate(urls: list[str], params: VfiParams, teacher: DisFlow | None, samples: int
                ) -> float:
    """Samples/s of the training stream, after the first batch (shuffle buffer fill)."""
    stream = train_samples(urls, params.train, 0, teacher)
    for _ in range(params.train.batch_size):
        next(stream)
    start = time.perf_counter()
    for _ in range(samples):
        next(stream)
    return samples / (time.perf_counter() - start)


def step_rate(stream: Stream, params: VfiParams, steps: int) -> float:
    """Samples/s of the train loop's optimizer step on ``stream``, after one warm-up step."""
    tp = params.train
    torch.manual_seed(tp.seed)
    model = build_model(params.model)
    peak = params.model.lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=tp.weight_decay)
    use_init, device = needs_init(model), torch.device("cpu")
    model.train()
    optimizer_step(model, optimizer, stream, tp, lr_at(0, tp, peak), device, use_init)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        optimizer_step(model, optimizer, stream, tp, lr_at(step, tp, peak), device, use_init)
    return steps * tp.batch_size * tp.accumulate / (time.perf_counter() - start)


def train_rate(urls: list[str], params: VfiParams, teacher: DisFlow | None, steps: int
               ) -> float:
    """Samples/s of the train loop's step loading its samples inline, as it does."""
    return step_rate(train_samples(urls, params.train, 0, teacher), params, steps)


def compute_rate(urls: list[str], params: VfiParams, teacher: DisFlow | None, steps: int
                 ) -> float:
    """Samples/s of the same step on two batches of the stream drawn beforehand, cycled:
    forward, losses, backward and AdamW only."""
    stream = train_samples(urls, params.train, 0, teacher)
    per_step = params.train.batch_size * params.train.accumulate
    return step_rate(itertools.cycle([next(stream) for _ in range(2 * per_step)]), params,
                     steps)


def warm_rates(urls: list[str], params: VfiParams, teacher: DisFlow | None, samples: int,
               steps: int) -> tuple[float, float]:
    """Loader and train samples/s once every sample's teacher flows are cached
    (:class:`vfi.training.samples.FlowCache`): the steady state of a run longer than an epoch.
    The stream is drawn until each key has been seen, then timed."""
    stream = train_samples(urls, params.train, 0, teacher)
    keys = {s["key"] for s in wds_samples(urls)}
    seen: set[str] = set()
    while seen != keys:
        seen.add(next(stream)["key"])
    start = time.perf_counter()
    for _ in range(samples):
        next(stream)
    loader = samples / (time.perf_counter() - start)
    return loader, step_rate(stream, params, steps)


def wds_samples(urls: list[str]) -> Iterator[dict[str, Any]]:
    """The raw samples of ``urls`` (keys only are needed: nothing is decoded)."""
    import webdataset as wds

    for sample in wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()):
        yield {"key": sample["__key__"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps")
    parser.add_argument("--samples", type=int, default=48, help="timed loader samples")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    params = load_vfi_params(args.params)
    tp, teacher = params.train, teacher_of(params)
    if tp.threads:
        torch.set_num_threads(tp.threads)  # as the train loop does
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{params.model.arch} model width {params.model.width}, flow_init "
          f"{params.model.flow_init}; crop {tp.crop} (best of {tp.crop_tries}), batch "
          f"{tp.batch_size} x {tp.accumulate}; teacher "
          f"{f'DIS {params.model.dis_preset}' if teacher else 'none'}")
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        urls = build_shards(Path(tmp), args.clips, args.seconds)
        loader = functools.partial(loader_rate, urls, params, teacher, args.samples)
        train = functools.partial(train_rate, urls, params, teacher, args.steps)
        compute = functools.partial(compute_rate, urls, params, teacher, args.steps)
        rates = best_rates({
            "loader": loader,
            "loader, no teacher": lambda: loader_rate(urls, params, None, args.samples),
            "train": train,
            "compute only": compute,
            "loader, 1 thread": with_threads(1, loader),
            "train, 1 thread": with_threads(1, train),
            "compute only, 1 thread": with_threads(1, compute),
        }, args.repeat)
        rates["loader, warm cache"], rates["train, warm cache"] = warm_rates(
            urls, params, teacher, args.samples, args.steps)
    for name, rate in rates.items():
        print(f"  {name:24s} {rate:7.1f} samples/s")
    for suffix in ("", ", 1 thread", ", warm cache"):
        ratio = rates[f"loader{suffix}"] / rates[f"train{suffix}"]
        print(f"  loader / train{suffix} = {ratio:.2f} (target >= 3; the loop loads inline: "
              f"loading is {1 / ratio:.0%} of a step)")

if __name__ == "__main__":
    main()
