"""Benchmark the training loader: the one stream training draws from, at 256 px.

Shards are made by the shard stage itself from synthetic 512x384 clips (frames stored
at 342x256, PNG level 1), in a temporary folder. Measured in the same run and printed
as ratios: reading the tars without decoding (webdataset's tar iteration: the I/O
floor), the ordered reader that evaluation uses (decoding only), and the training
stream of ``vfi.training.samples.train_samples`` with ``params.yaml``'s train section
but no classical flows (decoding, shuffle buffer, motion-seeking crop, flips,
reversal; ``bench_train.py`` adds the flows and the optimizer step). The load average
is printed first: a busy machine lowers every figure.

    python benchmarks/bench_loader.py [--clips 2 --seconds 8 --samples 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import webdataset as wds
from bench_shard import pseudo_triplets, synthetic_sources

from pipeline.core.config import ShardParams
from pipeline.dataset.manifest import shards_for_split
from pipeline.dataset.shards import run_shard
from vfi.config import TrainParams, load_vfi_params
from vfi.inference.triplets import read_triplets
from vfi.training.samples import train_samples


def tar_only(urls: list[str]) -> tuple[float, int]:
    """Seconds to iterate every sample's raw bytes, and the sample count."""
    start = time.perf_counter()
    n = sum(1 for _ in wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))
    return time.perf_counter() - start, n


def read_rate(urls: list[str]) -> tuple[float, int]:
    """Samples/s of the ordered reader (decoding to float tensors, nothing else)."""
    start = time.perf_counter()
    n = sum(1 for _ in read_triplets(urls))
    return n / (time.perf_counter() - start), n


def stream_rate(urls: list[str], params: TrainParams, samples: int) -> float:
    """Samples/s of the training stream, after the shuffle buffer's first fill."""
    stream = train_samples(urls, params)
    for _ in range(min(100, params.shuffle)):
        next(stream)
    start = time.perf_counter()
    for _ in range(samples):
        next(stream)
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--samples", type=int, default=200, help="timed stream samples")
    args = parser.parse_args()
    train = load_vfi_params(args.params).train
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp_name:
        tmp = Path(tmp_name)
        sources = synthetic_sources(tmp / "raw", args.clips, args.seconds)
        pseudo_triplets(sources, tmp / "triplets")
        result = run_shard(ShardParams(short_side=256, maxcount=32, contact_sheet=0), tmp / "raw",
                           tmp / "triplets", tmp / "shards")
        urls = [u for s in ("train", "val", "test") for u in shards_for_split(tmp / "shards", s)]
        size = result.manifest[["width", "height"]].iloc[0].tolist()
        secs, n = tar_only(urls)
        decode, _ = read_rate(urls)
        stream = stream_rate(urls, train, args.samples)
        print(f"{n} samples at {size[0]}x{size[1]} in {len(urls)} shards; crop {train.crop} "
              f"(best of {train.crop_tries}), shuffle {train.shuffle}")
        print(f"  tar read only    {n / secs:8.0f} samples/s (no decoding)")
        print(f"  ordered reader   {decode:8.0f} samples/s (decode to tensors)")
        print(f"  training stream  {stream:8.0f} samples/s")
        print(f"  stream / ordered reader = {stream / decode:.2f}; "
              f"ordered reader / tar read = {decode * secs / n:.3f}")


if __name__ == "__main__":
    main()
