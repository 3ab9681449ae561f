"""Train the in-betweening network (``python -m vfi.train``): the DVC train stage.

The loop lives in :mod:`vfi.training.loop`; this module is the stage's command line,
also run as ``torchrun --nproc_per_node=N -m vfi.train ...`` (one process per rank).
``train.triplets: naive`` trains on the naive control instead of the train shards
(:mod:`vfi.training.naive`: built from ``--raw``, ``--analysis`` and ``--triplets``).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Params
from pipeline.stage import StageError, run_stage
from vfi.inference.checkpoint import DEFAULT_DIR, CheckpointError
from vfi.training.distributed import distributed
from vfi.training.loop import SampleSource, train
from vfi.training.naive import naive_samples, naive_triplets

log = logging.getLogger("inbetweener.vfi.train")


def sample_source(params: Params, args: argparse.Namespace) -> SampleSource | None:
    """The naive control's stream for ``train.triplets: naive``; None: the train shards."""
    if params.train.triplets == "curated":
        return None
    naive = naive_triplets(Path(args.raw), Path(args.analysis), Path(args.triplets),
                           params.shard.size, filter_params=params.filter)
    return functools.partial(naive_samples, naive)


def _main(params: Params, args: argparse.Namespace) -> int:
    with distributed() as world:  # torchrun's process group, or one process
        if not world.is_main:  # one log: rank 0's (the others only warn)
            logging.getLogger("inbetweener").setLevel(logging.WARNING)
        try:
            result = train(params, args.shards, args.out, args.live, world=world,
                           samples=sample_source(params, args))
        except (ValueError, CheckpointError) as exc:  # no train shards, a junk checkpoint
            raise StageError(str(exc)) from None
    log.info("done: step %d, %.1f samples/s", result.step, result.samples_per_second)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vfi.train [--params] [--shards] [--out] [--live]``, also as
    ``torchrun --nproc_per_node=N -m vfi.train ...``."""
    paths = {"shards": "data/shards", "out": str(DEFAULT_DIR), "live": "dvclive",
             "raw": "data/raw", "analysis": "data/analysis", "triplets": "data/triplets"}
    return run_stage("vfi.train", __doc__, paths, _main, list(argv) if argv else None)


if __name__ == "__main__":
    raise SystemExit(main())
