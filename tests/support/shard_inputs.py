"""Inputs of the shard stage built from the synthetic truth, not from the earlier stages.

Shard tests must not depend on how well cuts, holds and filters work, so this writes
``data/raw`` (clips + ``sources.parquet`` through the download stage) and a
``filtered.parquet`` whose triplets are exact: within each shot of the truth,
consecutive distinct drawings (d0, d1, d2), f = first frame of each drawing,
t = (f1 - f0) / (f2 - f0). Every row the filter contract names is present; hashes are
fake but deterministic. A few extra rows have ``keep=False`` so the tests see that only
kept triplets are sharded. Splits cycle train, val, test over the scenes in order, so
any set with three or more scenes has all three.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import write_parquet
from pipeline.core.config import parse_params
from pipeline.core.tables import FILTERED_TABLE
from pipeline.sources.download import run_download, write_outputs

SPLIT_CYCLE = ("train", "val", "test")


@dataclass(frozen=True)
class ShardInputs:
    """Where the inputs are, and the triplets (all rows, kept or not)."""

    raw_dir: Path
    triplets_dir: Path
    triplets: pd.DataFrame
    truth: pd.DataFrame

    @property
    def kept(self) -> pd.DataFrame:
        return self.triplets[self.triplets["keep"]].reset_index(drop=True)


def fake_hash(*parts: object) -> np.uint64:
    """A deterministic 64-bit value standing in for a perceptual hash."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "big"))


def synthetic_raw(raw_dir: Path, clips: int = 3, width: int = 128, height: int = 96,
                  seconds: float = 3.0, seed: int = 0) -> pd.DataFrame:
    """Generate clips with the download stage (sources.parquet + truth.parquet)."""
    params = parse_params({"sources": [{
        "name": "synthetic", "kind": "synthetic", "clips": clips, "seed": seed,
        "width": width, "height": height, "seconds": seconds, "min_shot_seconds": 0.8,
        "max_shot_seconds": 1.5, "static_prob": 0.0, "repeat_prob": 0.0,
        "attribution": "inbetweener tests"}]})
    result = run_download(params, raw_dir)
    write_outputs(result, raw_dir)
    return pd.concat(result.truth, ignore_index=True)


def _drawings(clip: pd.DataFrame) -> pd.DataFrame:
    """First frame, pts, hold and scene of every drawing of one clip (truth order)."""
    shots = clip[clip["shot"] >= 0]
    first = shots.groupby("drawing", sort=False).first().reset_index()
    scene_of = {shot: i for i, shot in enumerate(pd.unique(clip.loc[clip["shot"] >= 0, "shot"]))}
    first["scene"] = first["shot"].map(scene_of)
    return first


def clip_triplets(clip: pd.DataFrame, scene_offset: int) -> pd.DataFrame:
    """Exact triplets of one clip: three consecutive drawings of one shot."""
    rows = []
    for _, shot in _drawings(clip).groupby("shot", sort=False):
        d = shot.reset_index(drop=True)
        for i in range(len(d) - 2):
            a, b, c = d.iloc[i], d.iloc[i + 1], d.iloc[i + 2]
            rows.append(_row(a, b, c, scene_offset))
    return pd.DataFrame(rows)


def _row(a: pd.Series, b: pd.Series, c: pd.Series, scene_offset: int) -> dict:
    f = [int(a.frame), int(b.frame), int(c.frame)]
    p = [float(a.pts), float(b.pts), float(c.pts)]
    source, scene = a["clip"], int(a["scene"])
    row = {"source": source, "scene": scene,
           **{f"d{k}": int(x.drawing) for k, x in enumerate((a, b, c))},
           **{f"f{k}": f[k] for k in range(3)}, **{f"pts{k}": p[k] for k in range(3)},
           "t": (f[1] - f[0]) / (f[2] - f[0]), "t_pts": (p[1] - p[0]) / (p[2] - p[0]),
           "span": f[2] - f[0], **{f"hold{k}": int(x.hold) for k, x in enumerate((a, b, c))},
           **{f"phash{k}": fake_hash("p", source, f[k]) for k in range(3)},
           **{f"dhash{k}": fake_hash("d", source, f[k]) for k in range(3)},
           "keep": True, "reason": "", "pan": False,
           "motion": float(5.0 + (f[0] * 7919 % 1000) / 50.0),
           "group": scene_offset + scene, "split": SPLIT_CYCLE[(scene_offset + scene) % 3]}
    return row


def filtered_table(truth: pd.DataFrame, drop_every: int = 7) -> pd.DataFrame:
    """All clips' triplets; every ``drop_every``-th row is marked dropped ("static")."""
    parts, offset = [], 0
    for _, clip in truth.groupby("clip", sort=True):
        part = clip_triplets(clip.reset_index(drop=True), offset)
        offset += int(clip.loc[clip["shot"] >= 0, "shot"].nunique())
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    drop = (np.arange(len(df)) % drop_every) == drop_every - 1
    df.loc[drop, "keep"] = False
    df.loc[drop, "reason"] = "static"
    return df.astype({"scene": np.int32, "group": np.int64, "keep": bool, "pan": bool,
                      **{f"phash{k}": np.uint64 for k in range(3)},
                      **{f"dhash{k}": np.uint64 for k in range(3)}})


def build_shard_inputs(root: Path, **synth: object) -> ShardInputs:
    """``root/raw`` (clips, sources.parquet) and ``root/triplets/filtered.parquet``."""
    raw_dir, triplets_dir = root / "raw", root / "triplets"
    truth = synthetic_raw(raw_dir, **synth)  # type: ignore[arg-type]
    triplets = filtered_table(truth)
    write_parquet(triplets, triplets_dir / FILTERED_TABLE)
    return ShardInputs(raw_dir, triplets_dir, triplets, truth)
