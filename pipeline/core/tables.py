"""The tables stages hand to one another: their file names, schema checks, per-source reads.

A stage never imports another stage; what two stages share about a table (its file name,
how to check its columns, how to read one source of it) lives here.

- ``sources.parquet``    download -> detect_cuts, filter (split pins), shard
- ``frames.parquet``     detect_cuts -> extract_triplets, filter (one row per frame)
- ``scenes.parquet``     detect_cuts -> filter
- ``drawings.parquet``   extract_triplets -> filter
- ``candidates.parquet`` extract_triplets -> filter
- ``filtered.parquet``   filter -> shard
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

SOURCES_TABLE = "sources.parquet"
FRAMES_TABLE = "frames.parquet"
SCENES_TABLE = "scenes.parquet"
DRAWINGS_TABLE = "drawings.parquet"
CANDIDATES_TABLE = "candidates.parquet"
FILTERED_TABLE = "filtered.parquet"


def check_columns(path: Path, needed: tuple[str, ...]) -> None:
    """Fail early, naming the file and the missing columns, on a wrong input schema."""
    names = set(pq.read_schema(path).names)
    missing = [c for c in needed if c not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")


def source_names(path: Path) -> list[str]:
    """Distinct sources of a table, sorted (the deterministic processing order)."""
    column = pq.read_table(path, columns=["source"]).column("source")
    return sorted(column.unique().to_pylist())


def read_source(path: Path, source: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows of one source, sorted by frame, with a fresh 0..n-1 index."""
    table = ds.dataset(path).to_table(columns=list(columns), filter=ds.field("source") == source)
    return table.to_pandas().sort_values("frame", kind="stable").reset_index(drop=True)


def source_splits(raw_dir: Path) -> dict[str, str]:
    """Each video's split pin (``auto``, ``train``, ``test``) from ``sources.parquet``.

    A table written before sources had a ``split`` is refused, not read as ``auto``:
    the download stage re-runs in seconds, and a guess could put a held-out work in
    training.
    """
    path = Path(raw_dir) / SOURCES_TABLE
    try:
        check_columns(path, ("name", "split"))
    except ValueError as exc:
        raise ValueError(f"{exc} (written before per-source splits: re-run the download stage)") from None
    table = pq.read_table(path, columns=["name", "split"]).to_pandas()
    return dict(zip(table["name"], table["split"]))
