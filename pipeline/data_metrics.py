"""Dataset metrics (``metrics/data.json``): what each table-only stage made of the frames.

Written by the filter stage, read by ``dvc metrics show/diff``. Every reason and split
is always present (zero when unused), so a diff between two experiments never shows a
key appearing or vanishing just because a count hit zero.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from pipeline import atomic
from pipeline.splits import SPLITS
from pipeline.triplets import REASONS


def data_metrics(frames: int, scenes: int, sources: int, drawings: int, filtered: pd.DataFrame) -> dict:
    """Counts from the analysis tables and the filtered triplets (plain ints only)."""
    kept = filtered[filtered["keep"]]
    reasons = filtered.loc[~filtered["keep"], "reason"].value_counts()
    per_split = kept["split"].value_counts()
    return {
        "frames": int(frames),
        "scenes": int(scenes),
        "cuts": int(scenes - sources),
        "drawings": int(drawings),
        "held_frames": int(frames - drawings),
        "candidates": len(filtered),
        "removed": {r: int(reasons.get(r, 0)) for r in sorted(set(REASONS) | set(reasons.index))},
        "kept": len(kept),
        "kept_per_split": {s: int(per_split.get(s, 0)) for s in SPLITS},
        "kept_pan": int(kept["pan"].sum()),
        "groups": int(filtered["group"].nunique()),
    }


def write_metrics(metrics: dict, path: str | os.PathLike[str]) -> None:
    """Write the metrics as JSON with sorted keys, atomically."""
    text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    atomic.write_bytes(path, text.encode())
