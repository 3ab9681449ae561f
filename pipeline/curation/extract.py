"""Drawings and candidate triplets from the analysis tables, one source at a time: the
library behind the extract_triplets stage (rules in :mod:`pipeline.curation.triplets`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core import atomic
from pipeline.core.config import TripletParams
from pipeline.core.progress import progress
from pipeline.core.tables import (
    CANDIDATES_TABLE,
    DRAWINGS_TABLE,
    FRAMES_TABLE,
    check_columns,
    read_source,
    source_names,
)
from pipeline.curation.triplets import (
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
