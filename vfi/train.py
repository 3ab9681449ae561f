"""Train the in-betweening network (``python -m vfi.train``): the DVC train stage.

The loop lives in :mod:`vfi.training.loop`; this module is the stage's command line,
also run as ``torchrun --nproc_per_node=N -m vfi.train ...`` (one process per rank).
``train.triplets: naive`` trains on the naive control instead of the train shards
(:mod:`vfi.training.naive`: built from ``--raw``, ``--analysis`` and ``--triplets``).

``--out`` gets ``model.pt`` only when the run completes; an interrupted run leaves the
published model as it was and the same command resumes it from ``--out/.run/last.pt``
(:mod:`vfi.training.publish`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.core.stage import StageError, run_stage
from vfi.config import ProjectParams, load_project_params
from vfi.errors import InputError
from vfi.inference.checkpoint import CHECKPOINT_NAME, DEFAULT_DIR, CheckpointError
from vfi.training.distributed import distributed
from vfi.training.loop import SampleSource, train
from vfi.training.naive import naive_samples, naive_triplets
from vfi.training.publish import Layout

log = logging.getLogger("inbetweener.vfi.train")
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def sample_source(params: ProjectParams, args: argparse.Namespace) -> SampleSource | None:
    """The naive control's stream for ``train.triplets: naive``; None: the train shards."""
    if params.train.triplets == "curated":
        return None
    naive = naive_triplets(Path(args.raw), Path(args.analysis), Path(args.triplets),
                           params.shard.short_side, filter_params=params.filter)
    return functools.partial(naive_samples, naive)


def _main(params: ProjectParams, args: argparse.Namespace) -> int:
    with distributed() as world:  # torchrun's process group, or one process
        if not world.is_main:  # one log: rank 0's (the others only warn)
            logging.getLogger("inbetweener").setLevel(logging.WARNING)
        started = time.time()
        try:
            result = train(params, args.shards, args.out, args.live, world=world,
                           samples=sample_source(params, args))
        except (InputError, CheckpointError) as exc:  # no train shards, a junk checkpoint
            raise StageError(str(exc)) from None
        except KeyboardInterrupt:  # Ctrl-C, also through `dvc exp run` / `dvc repro`
            if world.is_main:
                log.warning(interrupted(Path(args.out), started))
            return EXIT_INTERRUPTED
    log.info("done: step %d, %.1f samples/s; %s is this run's", result.step,
             result.samples_per_second, Path(args.out) / CHECKPOINT_NAME)
    return 0


def interrupted(out: Path, started: float) -> str:
    """What an interrupted user needs to hear: the published model is as it was, and
    whether the same command will resume (a state this run saved) or start over."""
    layout = Layout(out)
    saved = layout.run_state.is_file() and layout.run_state.stat().st_mtime >= int(started)
    state = (f"the same command (or `dvc exp run` with the same params) resumes from "
             f"{layout.run_state}" if saved else
             "nothing was saved yet (the run saves its state at each validation)")
    return f"interrupted: {layout.model} is unchanged; {state}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vfi.train [--params] [--shards] [--out] [--live]``, also as
    ``torchrun --nproc_per_node=N -m vfi.train ...``."""
    paths = {"shards": "data/shards", "out": str(DEFAULT_DIR), "live": "dvclive",
             "raw": "data/raw", "analysis": "data/analysis", "triplets": "data/triplets"}
    return run_stage("vfi.train", __doc__, paths, _main, list(argv) if argv else None,
                     load=load_project_params)


if __name__ == "__main__":
    raise SystemExit(main())
