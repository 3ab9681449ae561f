"""Detected scene starts scored against a synthetic truth's hard cuts."""

from __future__ import annotations

import numpy as np
import pandas as pd


def scene_starts(frames: pd.DataFrame) -> pd.DataFrame:
    """(source, frame) of every detected scene start except each source's first frame."""
    new_scene = frames["scene"].ne(frames["scene"].shift()) & frames["source"].eq(frames["source"].shift())
    return frames.loc[new_scene, ["source", "frame"]]


def _near(frame: int, targets: np.ndarray, tolerance: int) -> bool:
    return bool(targets.size) and bool(np.abs(targets - frame).min() <= tolerance)


def cut_scores(frames: pd.DataFrame, truth: pd.DataFrame, tolerance: int = 1) -> dict[str, float]:
    """Precision and recall of detected scene starts against the truth's hard cuts (±tolerance).

    A dissolve is a real change of shot but not a hard cut: a detection inside one (or
    next to it) is neither counted as a hit nor as a false cut in ``precision``; the raw
    figure, which counts it false, is reported beside it.
    """
    found = scene_starts(frames)
    cuts = {c: g["frame"].to_numpy() for c, g in truth[truth["is_cut_start"]].groupby("clip")}
    fades = {c: g["frame"].to_numpy() for c, g in truth[truth["transition"] == "dissolve"].groupby("clip")}
    empty = np.array([], dtype=np.int64)
    hits = [_near(f, cuts.get(s, empty), tolerance) for s, f in found.itertuples(index=False)]
    in_fade = [not h and _near(f, fades.get(s, empty), tolerance)
               for h, (s, f) in zip(hits, found.itertuples(index=False))]
    by_source = {s: g["frame"].to_numpy() for s, g in found.groupby("source")}
    real = truth.loc[truth["is_cut_start"], ["clip", "frame"]]
    recalled = [_near(f, by_source.get(c, empty), tolerance) for c, f in real.itertuples(index=False)]
    judged = len(hits) - sum(in_fade)
    return {"precision": sum(hits) / max(judged, 1), "raw_precision": sum(hits) / max(len(hits), 1),
            "recall": sum(recalled) / max(len(recalled), 1), "cuts": len(recalled),
            "found": len(hits), "in_dissolve": sum(in_fade)}
