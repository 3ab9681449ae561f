"""shard stage: decode only the kept frames, resize, encode, write WebDataset tars.

Reads ``sources.parquet`` (where each video is, its license, its demux frame count)
and the kept rows of ``filtered.parquet``; writes ``{out}/{split}/{split}-%06d.tar``,
``manifest.parquet``, ``shards.parquet`` and one wids index per split
(``pipeline.dataset.manifest``), ``metrics/shards.json`` and the dataset report
(``pipeline.dataset.report``).

Work is per source and streaming: the needed frame indices of a source are read in
order in one pass of the video's main stream (``pipeline.media.video.read_frames``), and each
frame is encoded once even when three triplets share it. Encoding costs about as much
as decoding; it runs on a thread pool (see :func:`_pool`) while the main thread
decodes.

Encoded frames are cached per source across runs (``pipeline.dataset.frame_parts``, in
``data/cache/parts/shards/``): only a source whose frames no part holds is decoded and
encoded (a new source; a changed file, decode filter or pixel/encoding param), so adding
a source to a big dataset costs that source's encoding, not the dataset's. Each such
source is one engine item (``pipeline.engine``, params ``engine``): a guarded worker
with ``shard.timeout`` (a decoder that hangs or crashes costs that source's triplets,
counted in ``skipped``) publishes the source's parts. Then every sample is packed from
the parts, in source then f0 order, into the split shards (``RawShardSink`` with
``pipeline.dataset.manifest.sample_blocks``: the bytes webdataset's writer gives). Its json is
built there, so provenance, groups and splits are never stale. Packing is cheap (about
2 s for the default dataset's 715 MB); the cache holds each frame once, about 40 % of
the shards' bytes, and ``rm -rf data/cache/parts/shards`` forgets it.

Sample: key ``{source}_{scene:04d}_{f0:06d}``; members ``f0.{ext}``, ``f1.{ext}``,
``f2.{ext}`` and ``json`` (see :func:`sample_meta`). Samples are written in source then
f0 order, each split to its own writer, so the same inputs and params give the same
bytes. A source that cannot be read is recorded (``skipped`` in the metrics, a warning
in the log) and the others go on.
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
