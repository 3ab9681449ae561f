"""extract_triplets stage: analysis tables -> drawings and candidate triplets.

Pure table work on ``frames.parquet`` (no video is decoded): frames that detect_cuts'
hold rule gave one ``drawing`` (``pipeline.analysis.holds``) collapse into drawings, split at
scene changes, and three consecutive drawings of one scene make a candidate triplet
(rules in ``pipeline.curation.triplets``). Writes ``drawings.parquet`` and ``candidates.parquet``.
Sources are processed one at a time, reading only the columns needed, so memory follows
the largest source, not the dataset. A frames table without the ``drawing`` column
(written before the hold rule moved into detect_cuts) or the ``time`` column (before
conversion repeats were timed) stops the stage naming the column: re-run detect_cuts.
No fallback to frame numbers for a missing ``time``: on a converted source that would
quietly write the wrong ``t``, the very error the column exists to fix.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.core.config import Params
from pipeline.core.stage import run_stage
from pipeline.curation.extract import ExtractResult, run_extract, write_outputs


def summary(result: ExtractResult) -> str:
    """One line: frames -> drawings -> candidates (span-dropped)."""
    cands = result.candidates
    too_long = int((~cands["keep"]).sum())
    return (f"extract_triplets: {result.frames} frames -> {len(result.drawings)} drawings -> "
            f"{len(cands)} candidate triplets ({too_long} too_long_span)")


def _main(params: Params, args: argparse.Namespace) -> int:
    result = run_extract(args.analysis, params.triplets, show_progress=True)
    write_outputs(result, args.out)
    print(summary(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("pipeline.stages.extract_triplets", __doc__,
                     {"analysis": "data/analysis", "out": "data/triplets"}, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
