"""The analysis stages end to end, measured against the synthetic ground truth.

download -> detect_cuts -> extract_triplets -> filter on a set with every feature of the
generator (all timings, static shots, repeats across clips, dissolves and flashes). The
figures are printed (run with -s to see them) and asserted against the issue's bars.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.analysis_tables import GROUND_TRUTH_SPEC, pairing_accuracy
from support.cut_scores import cut_scores
from support.stage_runs import run_stages

SPEC = GROUND_TRUTH_SPEC.model_copy(update={"width": 256, "height": 192})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """The four analysis stages on the clean set, default params (the same runner as
    the real-like accuracy tests)."""
    return run_stages(tmp_path_factory.mktemp("accuracy"), SPEC)


def test_every_feature_is_present(run):
    t = run.truth
    assert set(t["hold"][t["drawing"] >= 0]) >= {1, 2, 3}
    assert t["is_static_shot"].any() and (t["repeat_of"] >= 0).any()
    assert {"dissolve", "flash"} <= set(t["transition"])
    assert t["clip"].nunique() >= 6


def test_cut_detection_precision_and_recall(run):
    s = cut_scores(run.frames, run.truth)
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
