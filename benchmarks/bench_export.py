"""Benchmark ``inbetweener export``: MB/s of an export against a plain copy of the same tars.

Export copies tar members byte for byte, so it should run at the speed of the disk,
not of Python. The reference, measured in the same run on the same tars: copying the
shard files with ``shutil.copyfile`` and fsyncing them (the export fsyncs every shard
it writes, so both pay for durability; the copy without fsync is printed too). Frames
are fake PNG bytes of realistic size (30-60 KB: what a 256 px frame of real footage
compresses to); export never decodes them. Runs alternate, each after an ``os.sync()``; best of ``--repeat``.

    python benchmarks/bench_export.py [--samples 10000 --maxcount 1000 --repeat 3 --dir /tmp]

On a shared VM disk single runs vary by 2x or more; the ratio of the best runs is the
figure to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.dataset.manifest import SPLITS, ShardSink, shards_table, write_tables
from pipeline.dataset.subset import run_export

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_dataset(root: Path, samples: int, maxcount: int, seed: int = 0) -> int:
    """Shards + manifest of ``samples`` fake triplets; returns the bytes written."""
    rng = np.random.default_rng(seed)
    blobs = [PNG_MAGIC + rng.bytes(int(n)) for n in rng.integers(30_000, 60_000, 64)]
    split_of = np.array(SPLITS)[rng.choice(3, samples, p=[0.8, 0.1, 0.1])]
    sinks = {s: ShardSink(root, s, maxcount, 1 << 40) for s in SPLITS}
    rows = []
    for i in range(samples):
        key, split = f"fake-{i // 500:02d}_{i % 500:04d}_{i:06d}", str(split_of[i])
        frames = [blobs[(i * 3 + k) % len(blobs)] for k in range(3)]
        meta = b'{"key":"%s","t":0.5}' % key.encode()
        placed = sinks[split].write({"__key__": key, "f0.png": frames[0], "f1.png": frames[1],
                                     "f2.png": frames[2], "json": meta})
        rows.append({"key": key, "shard": placed.shard, "shard_index": placed.index,
                     "tar_offset": placed.offset, "tar_bytes": placed.length,
                     "split": split, "source": key.split("_")[0], "license": "CC0-1.0",
                     "attribution": "", "t": float(rng.choice([0.4, 0.5, 0.6])),
                     "format": "png", "width": 256, "height": 192,
                     **{f"bytes_f{k}": len(frames[k]) for k in range(3)},
                     "bytes_json": len(meta)})
    shards = shards_table([r for s in SPLITS for r in sinks[s].close()])
    write_tables(root, pd.DataFrame(rows), shards)
    return int(shards["bytes"].sum())


def copy_tars(src: Path, dst: Path, fsync: bool) -> float:
    """Seconds to copy every tar of ``src`` into ``dst`` with shutil.copyfile."""
    tars = sorted(src.rglob("*.tar"))
    start = time.perf_counter()
    for tar in tars:
        out = dst / tar.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tar, out)
        if fsync:
            with open(out, "rb") as fh:
                os.fsync(fh.fileno())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--maxcount", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write (default: the system temp dir); the disk decides")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_export_", dir=args.dir) as tmp:
        src = Path(tmp) / "shards"
        total = fake_dataset(src, args.samples, args.maxcount)
        mb = total / 1e6
        print(f"dataset: {args.samples} samples, {mb:.0f} MB in "
              f"{len(list(src.rglob('*.tar')))} shards")
        best = {"export": float("inf"), "copy+fsync": float("inf"), "copy": float("inf")}
        for r in range(args.repeat):
            os.sync()  # each measurement starts with no dirty pages from the one before
            start = time.perf_counter()
            result = run_export(src, "t >= 0", list(SPLITS), Path(tmp) / "export", args.maxcount,
                                force=True)
            best["export"] = min(best["export"], time.perf_counter() - start)
            assert len(result.manifest) == args.samples
            os.sync()
            best["copy+fsync"] = min(best["copy+fsync"], copy_tars(src, Path(tmp) / f"c{r}", True))
            os.sync()
            best["copy"] = min(best["copy"], copy_tars(src, Path(tmp) / f"p{r}", False))
            shutil.rmtree(Path(tmp) / f"c{r}")
            shutil.rmtree(Path(tmp) / f"p{r}")
        rates = {k: mb / v for k, v in best.items()}
        for name, rate in rates.items():
            print(f"{name:>11}: {rate:7.0f} MB/s  ({best[name]:.2f} s)")
        print(f"export / copy+fsync = {rates['export'] / rates['copy+fsync']:.2f}   "
              f"export / copy = {rates['export'] / rates['copy']:.2f}")


if __name__ == "__main__":
    main()
