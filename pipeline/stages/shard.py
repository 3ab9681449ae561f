"""shard stage: decode only the kept frames, resize, encode, write WebDataset tars.

Reads ``--raw`` (``sources.parquet``: each video, its license, its demux frame count) and
the kept rows of ``--triplets`` (``filtered.parquet``). Writes to ``--out`` (data/shards)
``{split}/{split}-%06d.tar``, ``manifest.parquet``, ``shards.parquet`` and a wids index
per split, plus ``--metrics`` (metrics/shards.json) and the dataset report (``--report``).
Each source's needed frames are read in order in one pass and each frame is encoded
once (``--workers`` threads). Encoded frames are cached per source in
``data/cache/parts/shards/`` (``rm -rf`` it to forget them), so only a new or changed
source is decoded again. Samples (key ``{source}_{scene:04d}_{f0:06d}``; members
``f0.{ext}``, ``f1.{ext}``, ``f2.{ext}`` and ``json``) are packed from the cache in
source then f0 order: the same inputs and params give the same bytes. A source that
cannot be read (or whose decoder hangs past ``shard.timeout`` or crashes) is counted in
``skipped`` in the metrics, with a warning, and the others go on.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.core.config import Params
from pipeline.core.stage import run_stage
from pipeline.dataset.manifest import SPLITS
from pipeline.dataset.shards import ShardResult, run_shard
from pipeline.engine import make_engine


def summary(result: ShardResult) -> str:
    """One line: samples per split, bytes, time, sources decoded, skipped triplets."""
    m = result.metrics
    splits = ", ".join(f"{s} {m[s]['samples']}" for s in SPLITS)
    rate = m["total"]["samples"] / result.seconds if result.seconds > 0 else 0.0
    line = (f"shard: {m['total']['samples']} samples ({splits}) in {m['total']['shards']} "
            f"shard(s), {m['total']['bytes'] / 1e6:.1f} MB, {rate:.0f} samples/s; "
            f"{len(result.ran)} source(s) decoded, the others' frames from the cache")
    if result.skipped:
        line += "; skipped " + ", ".join(f"{k}: {v}" for k, v in result.skipped.most_common(5))
    return line


def _workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding threads (default: one per core; 0: inline)")


def _main(params: Params, args: argparse.Namespace) -> int:
    with make_engine(params) as engine:
        workers = args.workers if args.workers is not None or engine.name == "local" \
            else engine.task_cpus()
        result = run_shard(params.shard, args.raw, args.triplets, args.out, args.metrics, args.report,
                           workers=workers, show_progress=True, engine=engine)
    print(summary(result))
    if result.metrics["total"]["samples"] == 0:
        print("shard: no sample written; stopping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    paths = {"raw": "data/raw", "triplets": "data/triplets", "out": "data/shards",
             "metrics": "metrics/shards.json", "report": "reports"}
    return run_stage("pipeline.stages.shard", __doc__, paths, _main, argv, extra=_workers_option)


if __name__ == "__main__":
    sys.exit(main())
