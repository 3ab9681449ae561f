"""filter stage: a keep flag and a reason for every candidate triplet, scene groups, splits.

Table work on ``--triplets`` (candidates, drawings), ``--analysis`` and ``--raw`` (split
pins). Writes ``--metrics`` and ``filtered.parquet``: every candidate with ``keep``, the
first reason below that applies, measures (``pan``, ``fade_ratio``, ``unexplained``,
``motion01``, ``motion12``), its scene group (scenes linked by near-duplicates) and split
(a group with a ``test``-pinned source goes to test whole). Rules in full: docs/NOTES.md.

1. ``too_long_span``      span > ``triplets.max_span`` (set by extract_triplets)
2. ``static``             f0 and f2 equal: phash and dhash within ``static_distance``
3. ``transition``         a drawing in a fade or dissolve, or a flash or blank frame
4. ``unexplained``        one end matches neither other frame (a missed cut)
5. ``too_little_motion``  change below ``min_motion``; ``too_much_motion``: above ``max_motion``
6. ``near_duplicate``     repeats an earlier kept triplet (reused footage)
"""

from __future__ import annotations

import argparse
import sys

from pipeline.core import atomic
from pipeline.core.config import Params
from pipeline.core.stage import run_stage
from pipeline.core.tables import FILTERED_TABLE, source_splits
from pipeline.curation.curate import FilterResult, run_filter
from pipeline.curation.data_metrics import kept_per_split, removed, write_metrics


def summary(result: FilterResult) -> str:
    """One line: kept of candidates, per split, and the removal reasons."""
    m = result.metrics
    reasons = ", ".join(f"{k}: {v}" for k, v in removed(m).items() if v)
    splits = "/".join(str(n) for n in kept_per_split(m).values())
    return (f"filter: kept {m['kept']} of {m['candidates']} triplets (train/val/test {splits}), "
            f"{m['groups']} scene groups; removed {reasons or 'none'}")


def _main(params: Params, args: argparse.Namespace) -> int:
    result = run_filter(args.analysis, args.triplets, params.filter, show_progress=True,
                        pins=source_splits(args.raw))
    atomic.write_parquet(result.filtered, args.triplets / FILTERED_TABLE)
    write_metrics(result.metrics, args.metrics)
    print(summary(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    paths = {"raw": "data/raw", "analysis": "data/analysis", "triplets": "data/triplets",
             "metrics": "metrics/data.json"}
    return run_stage("pipeline.stages.filter", __doc__, paths, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
