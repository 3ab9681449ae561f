"""The analysis stages on the project's real clips, as ``dvc repro`` runs them, and the
hand-checked truth of those clips (``data/real/truth/``: cuts, dissolves, held pairs).

:func:`run_real` takes ``params.yaml`` itself (its real ``kind: path`` sources that the
truth covers, every other section as written) and runs download -> detect_cuts ->
extract_triplets -> filter into a temporary folder, so a test of it tests the shipped
default. The scoring functions compare the stage outputs with the truth the way the
truth's README defines it: frame ``i`` of a pair is the later frame, counted in PyAV's
plain decode order (which is the analysis pass's order: no decode filter applies to
these clips, and a test checks that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.analysis import analyse as detect_cuts
from pipeline.core.config import parse_params
from pipeline.curation import curate as filter_stage
from pipeline.curation import extract as extract_triplets
from pipeline.sources import download

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "data" / "real" / "truth"
CUTS = pd.read_csv(TRUTH / "cuts.csv")
HOLDS = pd.read_csv(TRUTH / "holds.csv")
NEAR = 1  # frames: a detected cut this close to a true one finds it (a shot's first frame may be off by one)


@dataclass
class RealRun:
    """Stage outputs of the real clips the truth covers, keyed by the truth's file name."""

    names: dict[str, str]  # truth clip file name -> params source name
    sources: pd.DataFrame
    frames: pd.DataFrame
    scenes: pd.DataFrame
    triplets: pd.DataFrame  # filtered.parquet: every candidate with keep and reason


def real_params() -> tuple[dict, dict[str, str]]:
    """params.yaml with only the sources the truth covers (by file name)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    clips = set(CUTS["clip"]) | set(HOLDS["clip"])
    keep = [s for s in raw["sources"] if s.get("kind") == "path" and Path(s["path"]).name in clips]
    raw["sources"] = keep
    return raw, {Path(s["path"]).name: s["name"] for s in keep}


def run_real(tmp: Path) -> RealRun:
    """download -> detect_cuts -> extract_triplets -> filter on the real clips (local engine)."""
    raw, names = real_params()
    params = parse_params(raw)
    result = download.run_download(params, tmp / "raw", root=ROOT, partial_dir=tmp / "partial")
    download.write_outputs(result, tmp / "raw")
    cuts = detect_cuts.run_detect_cuts(params.cuts, tmp / "raw", tmp / "analysis",
                                       holds=params.triplets)
    detect_cuts.write_outputs(cuts, tmp / "analysis")
    extracted = extract_triplets.run_extract(tmp / "analysis", params.triplets)
    extract_triplets.write_outputs(extracted, tmp / "triplets")
    filtered = filter_stage.run_filter(tmp / "analysis", tmp / "triplets", params.filter)
    return RealRun(names, pd.read_parquet(tmp / "raw" / "sources.parquet"),
                   pd.read_parquet(tmp / "analysis" / "frames.parquet"),
                   pd.read_parquet(tmp / "analysis" / "scenes.parquet"), filtered.filtered)


def true_cuts(clip: str) -> list[int]:
    """First frames of new shots (hard cuts) of one clip."""
    rows = CUTS[(CUTS["clip"] == clip) & (CUTS["kind"] == "cut")]
    return sorted(rows["frame"].astype(int))


def dissolves(clip: str) -> list[tuple[int, int]]:
    """(first, last) blended frame of each dissolve of one clip."""
    rows = CUTS[CUTS["clip"] == clip]
    starts = rows.loc[rows["kind"] == "dissolve_start", "frame"].astype(int).tolist()
    ends = rows.loc[rows["kind"] == "dissolve_end", "frame"].astype(int).tolist()
    return list(zip(sorted(starts), sorted(ends), strict=True))


@dataclass(frozen=True)
class CutScore:
    clip: str
    true: int
    found: int  # true cuts with a detected cut within NEAR frames
    false: list[int]  # detected cuts near no true cut and outside every dissolve
    in_dissolve: list[int]  # detected cuts inside a dissolve (dissolves are no cuts)
    missed: list[int]


def cut_score(run: RealRun, clip: str) -> CutScore:
    """One clip's detected scene starts against its true cuts."""
    frames = run.frames[run.frames["source"] == run.names[clip]]
    scene = frames["scene"].to_numpy()
    detected = frames["frame"].to_numpy()[1:][np.diff(scene) != 0].tolist()
    truth = true_cuts(clip)
    spans = dissolves(clip)
    hit = [t for t in truth if any(abs(d - t) <= NEAR for d in detected)]
    inside = [d for d in detected if any(a <= d <= b + 1 for a, b in spans)]
    false = [d for d in detected if d not in inside and not any(abs(d - t) <= NEAR for t in truth)]
    return CutScore(clip, len(truth), len(hit), false, inside, sorted(set(truth) - set(hit)))


@dataclass(frozen=True)
class HoldScore:
    clip: str
    same: int
    same_kept: int  # `same` pairs on one drawing
    change: int
    change_apart: int  # `change` pairs on two drawings
    split: list[int]  # frames of `same` pairs split
    merged: list[int]  # frames of `change` pairs merged


def hold_score(run: RealRun, clip: str) -> HoldScore:
    """One clip's drawings against the hand-labelled pairs (``unsure`` and ``cut`` left out)."""
    frames = run.frames[run.frames["source"] == run.names[clip]].set_index("frame")
    drawing, scene = frames["drawing"], frames["scene"]
    labels = HOLDS[(HOLDS["clip"] == clip) & HOLDS["label"].isin(["same", "change"])]
    together = {int(i): bool(drawing[i] == drawing[i - 1] and scene[i] == scene[i - 1])
                for i in labels["frame"]}
    same = labels.loc[labels["label"] == "same", "frame"].astype(int).tolist()
    change = labels.loc[labels["label"] == "change", "frame"].astype(int).tolist()
    split = [i for i in same if not together[i]]
    merged = [i for i in change if together[i]]
    return HoldScore(clip, len(same), len(same) - len(split), len(change), len(change) - len(merged),
                     split, merged)


def crossing(run: RealRun, keep_only: bool = True) -> pd.DataFrame:
    """Triplets whose frames span a true cut or touch a dissolve (f0 < cut <= f2, or any
    frame from f0 to f2 inside a dissolve)."""
    by_name = {v: k for k, v in run.names.items()}
    trip = run.triplets[run.triplets["keep"]] if keep_only else run.triplets
    bad = []
    for row in trip.itertuples(index=False):
        clip = by_name.get(row.source)
        if clip is None:
            continue
        cuts = true_cuts(clip)
        if any(row.f0 < c <= row.f2 for c in cuts) or any(
                row.f0 <= b + 1 and a <= row.f2 for a, b in dissolves(clip)):
            bad.append(row)
    return pd.DataFrame(bad, columns=trip.columns)
