"""Benchmark the shard stage's frame cache: a re-run after adding one source, against a
full rebuild, as a ratio measured in the same run on the same inputs.

- full: ``run_shard`` with an empty cache (``dvc repro`` after ``rm -rf
  data/cache/parts/shards``, or the stage before the cache existed);
- incremental: the cache filled by a run without source ``--add``, then that source
  added to ``sources.parquet`` and ``filtered.parquet`` and the stage run again (what
  ``dvc repro`` does after a new entry in params.yaml's ``sources``).

Both write the report too (the removed-triplet sheet decodes a few frames of sources
whose picks changed), as the DVC stage does; ``--no-report`` leaves it out. The two
runs' shards, manifests and shards tables are compared byte for byte. Inputs are the
project's ``data/raw`` and ``data/triplets`` (after ``make repro``); the videos are
linked, never copied or changed. ``--add`` defaults to the source with the fewest kept
triplets (one small clip added to a big dataset).

    python benchmarks/bench_shard_incremental.py [--add NAME --repeat 1 --no-report]

On this shared 2-core VM single runs vary by 10-20 %; the ratio is the figure to compare.
Measured on the default dataset (2,718 samples, 14 sources), adding the smallest source:
2.4 s against 23.5 s (ratio 0.10) without the report, 10.2 s against 24.3 s (0.42) with
it: the removed-triplet sheet's random picks move to other sources, which are then
decoded again for a few frames (``pipeline.dataset.frame_parts``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipeline.core.atomic import write_parquet
from pipeline.core.config import ShardParams
from pipeline.core.tables import FILTERED_TABLE, SOURCES_TABLE
from pipeline.dataset.shards import run_shard
from pipeline.engine.parts import default_parts_dir


def link_raw(raw: Path, dest: Path, sources: pd.DataFrame) -> None:
    """``dest`` with a link to each video of ``raw`` and these ``sources`` rows."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sources.loc[sources["path"] != "", "path"]:
        if not (dest / path).exists():
            (dest / path).symlink_to((raw / path).resolve())
    write_parquet(sources, dest / SOURCES_TABLE)


def inputs(raw: Path, triplets: Path, root: Path, without: str | None) -> tuple[Path, Path]:
    """Raw and triplets folders under ``root``, without source ``without`` if given."""
    sources = pd.read_parquet(raw / SOURCES_TABLE)
    filtered = pd.read_parquet(triplets / FILTERED_TABLE)
    if without is not None:
        sources = sources[sources["name"] != without]
        filtered = filtered[filtered["source"] != without]
    link_raw(raw, root / "raw", sources)
    write_parquet(filtered.reset_index(drop=True), root / "triplets" / FILTERED_TABLE)
    return root / "raw", root / "triplets"


def timed(params: ShardParams, raw: Path, trip: Path, out: Path, report: bool
          ) -> tuple[float, list[str]]:
    """Seconds of one stage run (tables, metrics and report included), and what it decoded."""
    start = time.perf_counter()
    result = run_shard(params, raw, trip, out / "shards", out / "metrics.json",
                       out / "report" if report else None)
    return time.perf_counter() - start, result.ran


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def folder_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def smallest_source(triplets: Path) -> str:
    kept = pd.read_parquet(triplets / FILTERED_TABLE, columns=["source", "keep"])
    return str(kept[kept["keep"]].groupby("source").size().idxmin())


def bench(args: argparse.Namespace, tmp: Path) -> None:
    params = ShardParams()  # the defaults params.yaml writes out
    kept = pd.read_parquet(args.triplets / FILTERED_TABLE, columns=["source", "keep"])
    kept = kept[kept["keep"]]
    added = int((kept["source"] == args.add).sum())
    print(f"{len(kept)} samples from {kept['source'].nunique()} sources; adding {args.add} "
          f"({added} samples); report {'on' if args.report else 'off'}")
    full_raw, full_trip = inputs(args.raw, args.triplets, tmp / "full-in", None)
    best_full = best_inc = float("inf")
    for n in range(args.repeat):  # the first run also starts the guard's fork server
        before_raw, before_trip = inputs(args.raw, args.triplets, tmp / f"inc{n}-in", args.add)
        first, _ = timed(params, before_raw, before_trip, tmp / f"inc{n}", args.report)
        full, _ = timed(params, full_raw, full_trip, tmp / f"full{n}", args.report)
        after_raw, after_trip = inputs(args.raw, args.triplets, tmp / f"inc{n}-in", None)
        inc, ran = timed(params, after_raw, after_trip, tmp / f"inc{n}", args.report)
        same = tree_bytes(tmp / f"full{n}" / "shards") == tree_bytes(tmp / f"inc{n}" / "shards")
        print(f"  run {n}: first run without {args.add} {first:6.1f} s, full {full:6.1f} s, "
              f"re-run after adding it {inc:5.1f} s (decoded: {', '.join(ran) or 'none'}); "
              f"outputs byte-identical: {'yes' if same else 'NO'}")
        best_full, best_inc = min(best_full, full), min(best_inc, inc)
    out = tmp / "full0"
    print(f"shards {folder_mb(out / 'shards'):.0f} MB, frame cache "
          f"{folder_mb(default_parts_dir(out / 'shards')):.0f} MB")
    print(f"re-run after adding one source: {best_inc:.1f} s vs full rebuild {best_full:.1f} s: "
          f"ratio {best_inc / best_full:.3f} ({best_full / best_inc:.1f}x faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("data/raw"))
    parser.add_argument("--triplets", type=Path, default=Path("data/triplets"))
    parser.add_argument("--add", default=None, help="the source added (default: the smallest)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-report", dest="report", action="store_false")
    parser.add_argument("--dir", type=Path, default=None, help="temporary folder's parent")
    args = parser.parse_args()
    if not (args.raw / SOURCES_TABLE).is_file() or not (args.triplets / FILTERED_TABLE).is_file():
        sys.exit(f"no {args.raw / SOURCES_TABLE} or {args.triplets / FILTERED_TABLE}: "
                 "run make repro first")
    args.add = args.add or smallest_source(args.triplets)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_shard_inc_", dir=args.dir) as name:
        bench(args, Path(name))


if __name__ == "__main__":
    main()
