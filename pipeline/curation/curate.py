"""Measure, flag and group the candidate triplets: the library behind the filter stage."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.analysis.hashing import hamming
from pipeline.core.config import FilterParams
from pipeline.core.progress import progress
from pipeline.core.tables import (
    CANDIDATES_TABLE,
    DRAWINGS_TABLE,
    FRAMES_TABLE,
    SCENES_TABLE,
    check_columns,
    read_source,
)
from pipeline.curation.data_metrics import (
    data_metrics,
)
from pipeline.curation.explained import triplet_scores
from pipeline.curation.near_dup import dedup
from pipeline.curation.repeats import repeated_footage
from pipeline.curation.splits import group_splits, scene_groups
from pipeline.curation.transitions import is_pan, thumb_array, transition_drawings
from pipeline.curation.triplets import CANDIDATE_COLUMNS, held_pair_motion

log = logging.getLogger("inbetweener.filter")

FRAME_FEATURES = ("frame", "scene", "phash", "dhash", "luma_mean", "luma_std", "motion", "thumb")
FILTERED_COLUMNS = {
    **CANDIDATE_COLUMNS,
    "motion01": np.float32,
    "motion12": np.float32,
    "pan": bool,
    "fade_ratio": np.float32,
    "unexplained": np.float32,
    "group": np.int64,
    "split": object,
}
KEY_COLUMNS = ("phash0", "phash1", "phash2")


@dataclass(frozen=True)
class FilterResult:
    """``filtered.parquet`` rows (order source -> f0) and the data metrics."""

    filtered: pd.DataFrame
    metrics: dict


@dataclass(frozen=True)
class Features:
    """Per-triplet measurements of one source, aligned with its candidate rows."""

    transition: np.ndarray
    motion01: np.ndarray
    motion12: np.ndarray
    pan: np.ndarray
    fade_ratio: np.ndarray
    unexplained: np.ndarray


def frame_positions(frames: pd.DataFrame, frame_numbers: np.ndarray) -> np.ndarray:
    """Row positions of frame numbers in a frames table sorted by frame."""
    column = frames["frame"].to_numpy(np.int64)
    pos = np.searchsorted(column, frame_numbers)
    if len(pos) and (pos.max() >= len(column) or not np.array_equal(column[pos], frame_numbers)):
        raise ValueError("triplet frames missing from frames.parquet (tables out of date?)")
    return pos


def noise_floor(frames: pd.DataFrame) -> float:
    """The source's noise level: median ``motion`` of certainly-held frames (both hashes
    equal the previous frame's), 0 when there are none.

    Per source, not per scene, and independent of the drawing segmentation: a scene
    animated on ones has no held frames, and its "held" frames by our hash rule may be
    small real moves, which would pass for noise.
    """
    motion = held_pair_motion(frames)
    return float(np.median(motion)) if len(motion) else 0.0


def source_features(cands: pd.DataFrame, drawings: pd.DataFrame, frames: pd.DataFrame,
                    params: FilterParams) -> Features:
    """Transition flags, unexplained scores, motion and pan tags of one source's candidates.

    Every triplet frame is the first frame of its drawing, so everything is measured
    once per drawing and picked by the triplet's drawing ids.
    """
    firsts = frame_positions(frames, drawings["first_frame"].to_numpy(np.int64))
    thumbs = thumb_array(frames["thumb"].to_numpy()[firsts].tolist())
    scene = drawings["scene"].to_numpy()
    found = transition_drawings(
        thumbs, frames["luma_mean"].to_numpy(np.float64)[firsts], frames["luma_std"].to_numpy(np.float64)[firsts],
        scene, params.transition_tolerance, params.blank_std, params.flash_jump,
        params.transition_motion_ratio, params.transition_margin)
    flags, ratio = found.flags, found.ratio
    floor = noise_floor(frames)
    change = np.maximum(frames["motion"].to_numpy(np.float64)[firsts] - floor, 0.0).astype(np.float32)
    d0, d1, d2 = (cands[f"d{k}"].to_numpy(np.int64) for k in range(3))
    first = drawings["first_frame"].to_numpy(np.int64)
    if any(not np.array_equal(first[d], cands[f"f{k}"].to_numpy(np.int64)) for k, d in enumerate((d0, d1, d2))):
        raise ValueError(f"{cands['source'].iloc[0]}: candidates do not match drawings.parquet (tables out of date?)")
    log.debug("%s: noise floor %.2f, %d of %d drawings in transitions", cands["source"].iloc[0], floor,
              int(flags.sum()), len(flags))
    return Features(
        transition=flags[d0] | flags[d1] | flags[d2],
        motion01=change[d1],
        motion12=change[d2],
        pan=is_pan(thumbs[d0], thumbs[d2], params.pan_uniformity),
        fade_ratio=np.fmin(np.fmin(ratio[d0], ratio[d1]), ratio[d2]).astype(np.float32),
        unexplained=triplet_scores(thumbs, d0, d1, d2).astype(np.float32),
    )


def is_static(cands: pd.DataFrame, distance: int) -> np.ndarray:
    """Ends equal by both hashes (see module doc)."""
    return np.logical_and.reduce([
        hamming(cands[f"{h}0"].to_numpy(np.uint64), cands[f"{h}2"].to_numpy(np.uint64)) <= distance
        for h in ("phash", "dhash")
    ])


def assign_reasons(cands: pd.DataFrame, tests: dict[str, np.ndarray]) -> pd.DataFrame:
    """Set keep/reason: the first failing test in ``tests`` order wins; earlier reasons stay."""
    out = cands.copy()
    reason = out["reason"].to_numpy(object).copy()
    for name, failed in tests.items():
        reason[(reason == "") & failed] = name
    out["reason"] = reason
    out["keep"] = reason == ""
    return out


def near_duplicates(table: pd.DataFrame, params: FilterParams) -> tuple[np.ndarray, np.ndarray]:
    """(rows dropped as near-duplicates, (k, 2) row pairs linking shared footage).

    Drops are decided among the rows still kept; links come from all rows, because a
    triplet dropped for another reason still shows that two scenes share footage.
    """
    keys = table[list(KEY_COLUMNS)].to_numpy(np.uint64)
    dropped = np.zeros(len(table), bool)
    if len(keys) == 0:
        return dropped, np.zeros((0, 2), np.int64)
    links = dedup(keys, params.near_dup_distance, params.mih_blocks).links
    eligible = np.flatnonzero(table["keep"].to_numpy())
    if len(eligible):
        found = dedup(keys[eligible], params.near_dup_distance, params.mih_blocks)
        dropped[eligible[found.dropped]] = True
    return dropped | repeated_footage(table, links, params.repeat_frame_distance), links


def add_groups(table: pd.DataFrame, links: np.ndarray, params: FilterParams,
               pins: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``group`` and ``split`` columns from near-duplicate links between scenes and the
    sources' split pins (source -> ``auto``/``train``/``test``; None: all ``auto``).

    With ``pins`` given, every source of the table must be in it: a missing one means
    tables out of date, and guessing ``auto`` could leak a held-out work into training.
    """
    keys = list(zip(table["source"].tolist(), (int(s) for s in table["scene"])))
    if pins is not None:
        missing = sorted(set(table["source"]) - set(pins))
        if missing:
            raise ValueError(f"source(s) {', '.join(missing)} have no split in sources.parquet "
                             "(tables out of date?)")
    groups = scene_groups(keys, ((keys[i], keys[j]) for i, j in links))
    splits = group_splits(groups, params.seed, params.split, pins)
    out = table.copy()
    out["group"] = np.array([groups[k] for k in keys], np.int64)
    out["split"] = np.array([splits[g] for g in out["group"]], object)
    return out


def read_candidates(triplets_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidates (order source -> f0) and drawings (order source -> drawing)."""
    cands = pd.read_parquet(triplets_dir / CANDIDATES_TABLE)
    drawings = pd.read_parquet(triplets_dir / DRAWINGS_TABLE)
    cands = cands.sort_values(["source", "f0"], kind="stable").reset_index(drop=True)
    drawings = drawings.sort_values(["source", "drawing"], kind="stable").reset_index(drop=True)
    return cands, drawings


def measure(cands: pd.DataFrame, drawings: pd.DataFrame, frames_path: Path, params: FilterParams,
            show_progress: bool = False) -> Features:
    """Features of all candidates, one source at a time (one source's thumbnails in memory)."""
    parts = []
    for source, rows in progress(cands.groupby("source", sort=True), desc="filter", unit="source",
                                 enabled=show_progress):
        frames = read_source(frames_path, source, FRAME_FEATURES)
        mine = drawings[drawings["source"] == source].reset_index(drop=True)
        if not np.array_equal(mine["drawing"].to_numpy(), np.arange(len(mine))):
            raise ValueError(f"{source}: drawings are not numbered 0..n-1 (tables out of date?)")
        parts.append(source_features(rows, mine, frames, params))
    if not parts:
        return Features(np.zeros(0, bool), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, bool),
                        np.zeros(0, np.float32), np.zeros(0, np.float32))
    return Features(*(np.concatenate([getattr(p, name) for p in parts]) for name in Features.__dataclass_fields__))


def run_filter(analysis_dir: Path, triplets_dir: Path, params: FilterParams,
               show_progress: bool = False, pins: Mapping[str, str] | None = None) -> FilterResult:
    """Filter every candidate; returns the filtered table and the data metrics.

    ``pins``: each source's split pin (``tables.source_splits``); None pins nothing."""
    analysis_dir, triplets_dir = Path(analysis_dir), Path(triplets_dir)
    frames_path = analysis_dir / FRAMES_TABLE
    check_columns(frames_path, ("source",) + FRAME_FEATURES)
    cands, drawings = read_candidates(triplets_dir)
    feats = measure(cands, drawings, frames_path, params, show_progress)
    table = assign_reasons(cands, {
        "static": is_static(cands, params.static_distance),
        "transition": feats.transition,
        "unexplained": feats.unexplained >= params.unexplained_limit,
        "too_little_motion": np.minimum(feats.motion01, feats.motion12) < params.min_motion,
        "too_much_motion": np.maximum(feats.motion01, feats.motion12) > params.max_motion,
    })
    dropped, links = near_duplicates(table, params)
    table = assign_reasons(table, {"near_duplicate": dropped})
    table["motion01"], table["motion12"], table["pan"] = feats.motion01, feats.motion12, feats.pan
    table["fade_ratio"], table["unexplained"] = feats.fade_ratio, feats.unexplained
    table = add_groups(table, links, params, pins)[list(FILTERED_COLUMNS)].astype(FILTERED_COLUMNS)
    scenes = pd.read_parquet(analysis_dir / SCENES_TABLE, columns=["source", "scene"])
    metrics = data_metrics(frames=pq.ParquetFile(frames_path).metadata.num_rows, scenes=len(scenes),
                           sources=scenes["source"].nunique(), drawings=len(drawings), filtered=table)
    return FilterResult(filtered=table, metrics=metrics)
