"""The analysis stages end to end, measured against the synthetic ground truth.

download -> detect_cuts -> extract_triplets -> filter on a set with every feature of the
generator (all timings, static shots, repeats across clips, dissolves and flashes). The
figures are printed (run with -s to see them) and asserted against the issue's bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.analysis_tables import GROUND_TRUTH_SPEC, pairing_accuracy

SPEC = GROUND_TRUTH_SPEC.model_copy(update={"width": 256, "height": 192})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """The four analysis stages on the clean set, default params (the same runner as
    the real-like accuracy tests; imported here, as that module imports this one)."""
    from tests.test_accuracy_real import run_stages

    return run_stages(tmp_path_factory.mktemp("accuracy"), SPEC)


def _starts(frames: pd.DataFrame) -> pd.DataFrame:
    """(source, frame) of every detected scene start except each source's first frame."""
    new_scene = frames["scene"].ne(frames["scene"].shift()) & frames["source"].eq(frames["source"].shift())
    return frames.loc[new_scene, ["source", "frame"]]


def _near(frame: int, targets: np.ndarray, tolerance: int) -> bool:
    return bool(targets.size) and bool(np.abs(targets - frame).min() <= tolerance)


def _cut_scores(frames: pd.DataFrame, truth: pd.DataFrame, tolerance: int = 1) -> dict[str, float]:
    """Precision and recall of detected scene starts against the truth's hard cuts (±tolerance).

    A dissolve is a real change of shot but not a hard cut: a detection inside one (or
    next to it) is neither counted as a hit nor as a false cut in ``precision``; the raw
    figure, which counts it false, is reported beside it.
    """
    found = _starts(frames)
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


def test_every_feature_is_present(run):
    t = run.truth
    assert set(t["hold"][t["drawing"] >= 0]) >= {1, 2, 3}
    assert t["is_static_shot"].any() and (t["repeat_of"] >= 0).any()
    assert {"dissolve", "flash"} <= set(t["transition"])
    assert t["clip"].nunique() >= 6


def test_cut_detection_precision_and_recall(run):
    s = _cut_scores(run.frames, run.truth)
    print(f"\ncuts: precision {s['precision']:.3f} (raw {s['raw_precision']:.3f}), recall "
          f"{s['recall']:.3f}; {s['cuts']} hard cuts, {s['found']} found, "
          f"{s['in_dissolve']} inside dissolves")
    assert s["precision"] >= 0.95 and s["recall"] >= 0.95


def test_frames_assigned_to_the_right_drawing(run):
    acc = pairing_accuracy(run.drawings, run.truth)
    print(f"\ndrawings: accuracy {acc.accuracy:.4f} over {acc.frames} frame pairs "
          f"({acc.splits} splits, {acc.merges} merges)")
    assert acc.accuracy >= 0.98


def test_static_shots_produce_no_kept_triplet(run):
    kept = run.triplets[run.triplets["keep"]]
    static = kept[kept[["static0", "static1", "static2"]].any(axis=1)]
    print(f"\nstatic: {int(run.truth.loc[run.truth['is_static_shot'], 'shot'].nunique())} shots, "
          f"{len(static)} kept triplets")
    assert static.empty


def test_repeats_removed_and_share_the_split_of_their_original(run):
    trip = run.triplets
    from_repeat = trip[(trip["repeat_of0"] >= 0) & (trip["repeat_of0"] == trip["repeat_of2"])
                       & (trip["reason"].isin(["", "near_duplicate"]))]
    removed = float((from_repeat["reason"] == "near_duplicate").mean())
    print(f"\nrepeats: {len(from_repeat)} eligible triplets, {removed:.3f} removed as near_duplicate")
    assert len(from_repeat) > 0 and removed >= 0.95
    split_of_shot = trip.groupby("shot0")["split"].agg(lambda s: set(s))
    for original, repeat in run.truth.loc[run.truth["repeat_of"] >= 0, ["repeat_of", "shot"]] \
            .drop_duplicates().itertuples(index=False):
        if original in split_of_shot.index and repeat in split_of_shot.index:
            assert split_of_shot[original] == split_of_shot[repeat], (original, repeat)


def test_t_is_exact_for_kept_triplets(run):
    kept = run.triplets[run.triplets["keep"]]
    known = kept[(kept["start0"] == kept["f0"]) & (kept["start1"] == kept["f1"])
                 & (kept["start2"] == kept["f2"]) & (kept["shot0"] == kept["shot2"])]
    exact = np.isclose(known["t"], (known["f1"] - known["f0"]) / (known["f2"] - known["f0"]))
    print(f"\nt: {int(exact.sum())} of {len(known)} known-timing kept triplets exact "
          f"({len(kept)} kept)")
    assert len(known) >= 0.9 * len(kept) and exact.all()


def test_no_kept_triplet_touches_a_transition(run):
    kept = run.triplets[run.triplets["keep"]]
    bad = kept[(kept[["transition0", "transition1", "transition2"]] != "").any(axis=1)
               | (kept["shot0"] != kept["shot2"])]
    assert bad.empty, bad[["source", "f0", "f1", "f2"]]
