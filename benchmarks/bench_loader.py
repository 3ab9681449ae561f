"""Benchmark the training loader: samples/s with 0 and 2 DataLoader workers at 256 px.

Shards are made by the shard stage itself from synthetic 512x384 clips (frames stored
at 342x256, PNG level 1), in a temporary folder. References measured in the same run:
reading the same tars without decoding (webdataset's tar iteration only: the I/O
floor), and the loader with 0 workers; the 2-worker figure is printed as a ratio to it.
Parallel speed-ups need idle cores: the load average is printed first.

    python benchmarks/bench_loader.py [--clips 2 --seconds 8 --batch 16 --epochs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import webdataset as wds

from pipeline.config import ShardParams
from pipeline.shard import run_shard
from vfi.data import shards_for_split, triplet_loader

from bench_shard import pseudo_triplets, synthetic_sources


def tar_only(urls: list[str]) -> tuple[float, int]:
    """Seconds to iterate every sample's raw bytes, and the sample count."""
    start = time.perf_counter()
    n = sum(1 for _ in wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))
    return time.perf_counter() - start, n


def loader_rate(urls: list[str], workers: int, batch: int, epochs: int) -> tuple[float, int]:
    """Best samples/s over ``epochs`` passes (worker start-up included in each pass)."""
    best, n = 0.0, 0
    for _ in range(epochs):
        loader = triplet_loader(urls, batch_size=batch, num_workers=workers, shuffle=100)
        start = time.perf_counter()
        n = sum(len(b["key"]) for b in loader)
        best = max(best, n / (time.perf_counter() - start))
    return best, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp_name:
        tmp = Path(tmp_name)
        sources = synthetic_sources(tmp / "raw", args.clips, args.seconds)
        pseudo_triplets(sources, tmp / "triplets")
        result = run_shard(ShardParams(size=256, maxcount=32, contact_sheet=0), tmp / "raw",
                           tmp / "triplets", tmp / "shards")
        urls = [u for s in ("train", "val", "test") for u in shards_for_split(tmp / "shards", s)]
        size = result.manifest[["width", "height"]].iloc[0].tolist()
        secs, n = tar_only(urls)
        print(f"{n} samples at {size[0]}x{size[1]} in {len(urls)} shards")
        print(f"  tar read only    {n / secs:8.0f} samples/s (no decoding)")
        rates = {}
        for workers in (0, 2):
            rates[workers], _ = loader_rate(urls, workers, args.batch, args.epochs)
            print(f"  loader {workers} workers {rates[workers]:8.0f} samples/s (batch {args.batch})")
        print(f"  2 workers / 0 workers = {rates[2] / rates[0]:.2f}")


if __name__ == "__main__":
    main()
