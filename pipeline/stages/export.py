"""export stage: the curated subset of the shards that ``params.export`` describes.

Runs :func:`pipeline.dataset.subset.run_export` (the query, the byte-for-byte copy of the chosen
samples, the tables and the dataset card; ``inbetweener export`` is the same function
with options) and always replaces its output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.config import Params
from pipeline.core.stage import run_stage
from pipeline.dataset.subset import run_export, summary


def _main(params: Params, args: argparse.Namespace) -> int:
    """The DVC stage: ``params.export`` drives it, and it always replaces its output."""
    p = params.export
    result = run_export(args.shards, p.where, p.splits, Path(p.out), p.maxcount,
                        force=True, params_path=args.params, show_progress=True)
    print(summary(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("pipeline.stages.export", __doc__, {"shards": "data/shards"}, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
