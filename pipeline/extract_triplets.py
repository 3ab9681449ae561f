"""extract_triplets stage: analysis tables -> drawings and candidate triplets.

Pure table work on ``frames.parquet`` (no video is decoded): frames that detect_cuts'
hold rule gave one ``drawing`` (``pipeline.holds``) collapse into drawings, split at
scene changes, and three consecutive drawings of one scene make a candidate triplet
(rules in ``pipeline.triplets``). Writes ``drawings.parquet`` and ``candidates.parquet``.
Sources are processed one at a time, reading only the columns needed, so memory follows
the largest source, not the dataset. A frames table without the ``drawing`` column
(written before the hold rule moved into detect_cuts) or the ``time`` column (before
conversion repeats were timed) stops the stage naming the column: re-run detect_cuts.
No fallback to frame numbers for a missing ``time``: on a converted source that would
quietly write the wrong ``t``, the very error the column exists to fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import atomic
from pipeline.config import Params, TripletParams
from pipeline.progress import progress
from pipeline.stage import run_stage
from pipeline.tables import (
    CANDIDATES_TABLE,
    DRAWINGS_TABLE,
    FRAMES_TABLE,
    check_columns,
    read_source,
    source_names,
)
from pipeline.triplets import (
    CANDIDATE_COLUMNS,
    DRAWING_COLUMNS,
    FRAME_INPUT,
    candidate_triplets,
    drawings_of,
    empty_table,
)

log = logging.getLogger("inbetweener.extract_triplets")

# frames.parquet columns a later detect_cuts added: a table without one is stale
ADDED_BY_DETECT_CUTS = {"drawing": "the hold rule moved into detect_cuts",
                        "time": "conversion repeats were timed"}


@dataclass(frozen=True)
class ExtractResult:
    """Both output tables, rows sorted by source then frame."""

    frames: int
    drawings: pd.DataFrame
    candidates: pd.DataFrame


def run_extract(analysis_dir: Path, params: TripletParams, show_progress: bool = False) -> ExtractResult:
    """Drawings and candidate triplets of every source in ``analysis_dir/frames.parquet``."""
    path = Path(analysis_dir) / FRAMES_TABLE
    try:
        check_columns(path, FRAME_INPUT)
    except ValueError as err:
        raise ValueError(f"{err}{_stale_hint(str(err))}") from None
    columns = FRAME_INPUT
    drawings, candidates, frames = [], [], 0
    for source in progress(source_names(path), desc="extract_triplets", unit="source", enabled=show_progress):
        rows = read_source(path, source, columns)
        frames += len(rows)
        found = drawings_of(rows, params)
        drawings.append(found)
        candidates.append(candidate_triplets(found, params))
        log.debug("%s: %d frames, %d drawings, %d candidates", source, len(rows), len(found), len(candidates[-1]))
    return ExtractResult(
        frames=frames,
        drawings=_concat(drawings, DRAWING_COLUMNS),
        candidates=_concat(candidates, CANDIDATE_COLUMNS),
    )


def _stale_hint(error: str) -> str:
    """What to do about a frames table written by an older detect_cuts: the columns it
    lacks are made there, so re-run it (empty for any other missing column). The names
    are read from ``check_columns``' message, not searched in it: the path may hold them."""
    missing = error.rsplit("missing column(s) ", 1)[-1].split(", ")
    why = [text for column, text in ADDED_BY_DETECT_CUTS.items() if column in missing]
    return f" (a frames table from before {' and '.join(why)}: re-run detect_cuts)" if why else ""


def _concat(parts: list[pd.DataFrame], columns: dict[str, object]) -> pd.DataFrame:
    """Concatenate per-source tables and keep exactly the declared columns and types."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_table(columns)
    return pd.concat(parts, ignore_index=True)[list(columns)].astype(columns)


def write_outputs(result: ExtractResult, out_dir: Path) -> None:
    """Both tables, each atomically."""
    atomic.write_parquet(result.drawings, Path(out_dir) / DRAWINGS_TABLE)
    atomic.write_parquet(result.candidates, Path(out_dir) / CANDIDATES_TABLE)


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
    return run_stage("pipeline.extract_triplets", __doc__,
                     {"analysis": "data/analysis", "out": "data/triplets"}, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
