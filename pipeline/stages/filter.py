"""filter stage: a keep flag and a reason for every candidate triplet, scene groups, splits.

Table work only: candidates and drawings from extract_triplets, thumbnails, luma and
motion from ``frames.parquet``, each source's split pin from ``sources.parquet``. Nothing is dropped silently: every row stays in
``filtered.parquet`` with ``keep`` and the first reason that applies, in this order

1. ``too_long_span``     set by extract_triplets (span > triplets.max_span)
2. ``static``            the ends are equal: phash and dhash of f0 and f2 both within
                         ``static_distance`` bits (also catches a cycle returning to f0)
3. ``transition``        one of the three drawings belongs to a dissolve/fade (a
                         cross-fade of its neighbours that explains it clearly better
                         than motion: ``transition_motion_ratio``; or in the span of a
                         slow dissolve such fades seed, judged against the span's ends)
                         or is a flash or blank frame (``pipeline.curation.transitions``)
4. ``unexplained``       the three frames are not one picture: one end matches neither
                         the middle nor the other end (16x16 thumbnails; flicker, a pan
                         and local motion allowed for), as across a cut the detector
                         missed: score ``unexplained`` at least ``unexplained_limit``
                         (``pipeline.curation.explained``)
5. ``too_little_motion`` the smaller drawing change (``motion01``, ``motion12``) is
                         below ``min_motion``: the middle is (almost) an end, e.g. a
                         held drawing split in two by hash noise
   ``too_much_motion``   the larger drawing change is above ``max_motion``
6. ``near_duplicate``    the triplet repeats an earlier kept triplet (reused footage)

Motion unit. ``motion01`` / ``motion12`` (written as columns) are the analysis-size
``motion`` of f1 and f2: the mean absolute grey-level change (0-255) at the drawing
changes d0 -> d1 and d1 -> d2, minus the source's noise floor (``noise_floor``: the
grain and compression noise that every frame has). They are already in the table, cost
nothing, and see small objects that a 16x16 thumbnail averages away.

Near-duplicates. The key of a triplet is its three phashes (f0, f1, f2) read as one
192-bit string; two triplets are near-duplicates when the keys differ in at most
``near_dup_distance`` bits in total. Rows are taken in order source -> f0; a row is
dropped when an earlier *kept* row is that close. The search is multi-index hashing
(``pipeline.curation.near_dup``), so it grows ~linearly. Drops are decided among the rows still
kept after steps 1-5; the links that form scene groups come from all rows.

Repeated footage. Reused footage under film grain is not decoded into the same
drawings twice: the hold rule places the drawing changes of a slow shot a frame apart
in the two copies, so the copy yields other triplets (f 2, 3, 6 where the original
gave 75, 76, 77) whose keys match nothing. So a link also compares footage: a kept row
of the later of two linked scenes is a near-duplicate too when each of its three
frames is within ``repeat_frame_distance`` bits (phash and dhash) of a frame of the
earlier scene's triplets. On the real-like synthetic set a repeated drawing's frame is
within 4 bits of its original, an unrelated shot's at least 18.

``pan`` is a tag, not a reason: the ends differ by one whole-frame shift
(``pipeline.curation.transitions.is_pan``). ``fade_ratio`` is the measure behind a fade
``transition``: fade residual over motion residual of the deciding drawing (for a
drawing of a dissolve span, the span's; at most ``transition_motion_ratio`` on a fade
removal; above it where a fade fit was tried but motion explained the drawing; NaN
where no fade was fitted, e.g. a flash).
``unexplained`` is the score behind that reason, on every row: near 0 for three frames
of one picture, above ``unexplained_limit`` on a removal.

Groups and splits (``pipeline.curation.splits``): the near-duplicate links join scenes into
groups; every row, kept or not, gets its scene's group and the group's split. A source's
``split`` pin (``sources.parquet``: ``auto``, ``train`` or ``test``) binds the groups it
is in: a group with a ``test``-pinned scene goes to test whole, else one with a
``train``-pinned scene goes to train or val.
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
