"""Dataset metrics (``metrics/data.json``): what each table-only stage made of the frames.

Written by the filter stage, read by ``dvc metrics show/diff`` and ``dvc exp show``.
Keys are flat (``kept_train``, ``removed_static``): one level, as every metrics file of
the project, so a key reads the same in the file, in a diff and as an ``exp show``
column. Every reason and split is always present (zero when unused), so a diff between
two experiments never shows a key appearing or vanishing just because a count hit zero.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from pipeline.core import atomic
from pipeline.curation.splits import SPLITS
from pipeline.curation.triplets import REASONS


def data_metrics(frames: int, scenes: int, sources: int, drawings: int, filtered: pd.DataFrame) -> dict:
    """Counts from the analysis tables and the filtered triplets (plain ints only):
    ``kept_{split}`` per split, ``removed_{reason}`` per removal reason."""
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
        **{f"removed_{r}": int(reasons.get(r, 0)) for r in sorted(set(REASONS) | set(reasons.index))},
        "kept": len(kept),
        **{f"kept_{s}": int(per_split.get(s, 0)) for s in SPLITS},
        "kept_pan": int(kept["pan"].sum()),
        "groups": int(filtered["group"].nunique()),
    }


def removed(metrics: dict) -> dict[str, int]:
    """Reason -> count, from the flat ``removed_{reason}`` keys."""
    return {k.removeprefix("removed_"): v for k, v in metrics.items() if k.startswith("removed_")}


def kept_per_split(metrics: dict) -> dict[str, int]:
    """Split -> kept count, from the flat ``kept_{split}`` keys."""
    return {s: metrics[f"kept_{s}"] for s in SPLITS}


def write_metrics(metrics: dict, path: str | os.PathLike[str]) -> None:
    """Write the metrics as JSON with sorted keys, atomically."""
    text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    atomic.write_bytes(path, text.encode())
