"""Held runs -> drawings -> candidate triplets: pure table functions, no I/O.

Frames arrive with the hold rule's ``drawing`` column (:mod:`pipeline.analysis.holds`,
decided while decoding); :func:`drawings_of` also starts a drawing at every scene's first
frame, so a drawing never spans a scene change. :func:`candidate_triplets`: inside one
scene, three consecutive distinct drawings (d0, d1, d2) give a triplet of their first
frames (f0, f1, f2) with ``t = (T1 - T0) / (T2 - T0)`` from the frames' ``time`` column
(true time in film frames, :func:`pipeline.analysis.cadence.film_time`); ``t_pts`` is
the same from timestamps (variable frame rate); ``span = f2 - f0`` stays in decoded
frames. With ``stride`` k only every k-th triplet of a scene is emitted (the 0th, kth,
2kth, counted from its first drawing). A triplet whose span exceeds ``max_span`` stays
in the table with ``keep=False, reason="too_long_span"``.
Why drawings, and an example of ``t``: docs/NOTES.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.config import TripletParams

DRAWING_COLUMNS = {
    "source": object,
    "scene": np.int32,
    "drawing": np.int64,
    "first_frame": np.int64,
    "last_frame": np.int64,
    "hold": np.int64,
}
CANDIDATE_COLUMNS = {
    "source": object,
    "scene": np.int32,
    **{f"d{k}": np.int64 for k in range(3)},
    **{f"f{k}": np.int64 for k in range(3)},
    **{f"pts{k}": np.float64 for k in range(3)},
    "t": np.float64,
    "t_pts": np.float64,
    "span": np.int64,
    **{f"hold{k}": np.int64 for k in range(3)},
    **{f"phash{k}": np.uint64 for k in range(3)},
    **{f"dhash{k}": np.uint64 for k in range(3)},
    "keep": bool,
    "reason": object,
}
FRAME_INPUT = ("source", "frame", "pts", "scene", "phash", "dhash", "drawing", "time")
TOO_LONG_SPAN = "too_long_span"
# Every reason a candidate can be dropped for, in the order they are tested (here, then
# in the filter stage); the first that applies is recorded.
REASONS = (TOO_LONG_SPAN, "static", "transition", "unexplained", "too_little_motion", "too_much_motion", "near_duplicate")


def held_pair_motion(frames: pd.DataFrame) -> np.ndarray:
    """``motion`` of every frame whose phash and dhash both equal the previous frame's
    in the same scene: certainly held, so its motion is the source's noise (grain,
    flicker, compression), whatever the hold threshold says."""
    scene = frames["scene"].to_numpy()
    ph, dh = frames["phash"].to_numpy(np.uint64), frames["dhash"].to_numpy(np.uint64)
    held = (scene[1:] == scene[:-1]) & (ph[1:] == ph[:-1]) & (dh[1:] == dh[:-1])
    return frames["motion"].to_numpy(np.float64)[1:][held]


def split_at_scenes(drawing: np.ndarray, scene: np.ndarray) -> np.ndarray:
    """Drawing index (0-based) of every frame of one source, frames in order: a new
    drawing where the hold rule's ``drawing`` changes or the scene does."""
    if len(drawing) == 0:
        return np.zeros(0, np.int64)
    new = np.r_[False, (drawing[1:] != drawing[:-1]) | (scene[1:] != scene[:-1])]
    return np.cumsum(new).astype(np.int64)


def drawings_of(frames: pd.DataFrame, params: TripletParams) -> pd.DataFrame:
    """One row per drawing of one source (frames sorted by frame).

    Besides the ``drawings.parquet`` columns it carries the first frame's pts, film time
    and hashes, which the triplets need.
    """
    ids = split_at_scenes(frames["drawing"].to_numpy(np.int64), frames["scene"].to_numpy())
    starts = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, bool)
    first = frames.loc[starts]
    frame = frames["frame"].to_numpy(np.int64)
    last = np.r_[np.flatnonzero(starts)[1:] - 1, len(frames) - 1] if len(ids) else np.zeros(0, int)
    out = pd.DataFrame({
        "source": first["source"].to_numpy(object),
        "scene": first["scene"].to_numpy(np.int32),
        "drawing": ids[starts],
        "first_frame": first["frame"].to_numpy(np.int64),
        "last_frame": frame[last],
        "hold": frame[last] - first["frame"].to_numpy(np.int64) + 1,
        "pts": first["pts"].to_numpy(np.float64),
        "time": first["time"].to_numpy(np.float64),
        "phash": first["phash"].to_numpy(np.uint64),
        "dhash": first["dhash"].to_numpy(np.uint64),
    })
    return out


def triplet_starts(scene: np.ndarray, stride: int) -> np.ndarray:
    """Indices i of drawings that start an emitted triplet (i, i+1, i+2).

    The three drawings must share a scene; only every ``stride``-th triplet of a scene
    (counted from the scene's first drawing) is emitted.
    """
    n = len(scene)
    if n < 3:
        return np.zeros(0, np.int64)
    i = np.arange(n - 2)
    same = scene[i] == scene[i + 2]
    scene_first = np.r_[0, np.flatnonzero(scene[1:] != scene[:-1]) + 1]
    position = i - scene_first[np.searchsorted(scene_first, i, side="right") - 1]
    return i[same & (position % stride == 0)]


def _time_fraction(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(b - a) / (c - a), NaN where the span is not positive (broken timestamps)."""
    span = (c - a).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, (b - a) / span, np.nan)


def candidate_triplets(drawings: pd.DataFrame, params: TripletParams) -> pd.DataFrame:
    """Candidate triplets of one source's drawings (see module doc)."""
    idx = triplet_starts(drawings["scene"].to_numpy(), params.stride)
    col = {name: drawings[name].to_numpy() for name in ("drawing", "first_frame", "pts", "time", "hold", "phash", "dhash")}
    out: dict[str, np.ndarray] = {
        "source": drawings["source"].to_numpy(object)[idx],
        "scene": drawings["scene"].to_numpy(np.int32)[idx],
    }
    for prefix, name in (("d", "drawing"), ("f", "first_frame"), ("pts", "pts")):
        for k in range(3):
            out[f"{prefix}{k}"] = col[name][idx + k]
    times = [col["time"][idx + k] for k in range(3)]
    out["t"] = _time_fraction(*times)
    out["t_pts"] = _time_fraction(out["pts0"], out["pts1"], out["pts2"])
    out["span"] = out["f2"] - out["f0"]
    for prefix in ("hold", "phash", "dhash"):
        for k in range(3):
            out[f"{prefix}{k}"] = col[prefix][idx + k]
    out["keep"] = out["span"] <= params.max_span
    out["reason"] = np.where(out["keep"], "", TOO_LONG_SPAN).astype(object)
    return pd.DataFrame(out, columns=list(CANDIDATE_COLUMNS)).astype(CANDIDATE_COLUMNS)


def empty_table(columns: dict[str, object]) -> pd.DataFrame:
    """A zero-row table with the given schema (so empty inputs still write typed files)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
