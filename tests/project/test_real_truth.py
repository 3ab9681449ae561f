"""The shipped default on real footage, against hand-checked truth (``data/real/truth/``).

Cuts (every hard cut and dissolve of five clips: monochrome film, HEVC film scans,
Flash-style digital, a GIF) and 600 hand-labelled frame pairs (film flicker, weave, dust
and codec noise are ``same``; any intended change, however small, and every frame of a
pan is ``change``). The figures are printed (``-s``) per clip and asserted against
issue 20's bars: cuts at least 0.98 precision and recall, dissolves never cut inside;
frame pairs with ``same`` and ``change`` recall each at least 0.95 and accuracy at
least 0.97; no kept triplet across a true
cut or into a dissolve.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.real_truth import (
    CUTS,
    HOLDS,
    RealRun,
    crossing,
    cut_score,
    hold_score,
    run_real,
)

from pipeline.core.tables import FILTERED_TABLE
from pipeline.dataset.shards import load_kept

pytestmark = pytest.mark.slow  # the real clips through the stages: its fixture alone


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    return run_real(tmp_path_factory.mktemp("real_truth"))


def test_every_truth_clip_is_a_shipped_source_analysed_undecimated(real: RealRun) -> None:
    """The truth counts frames in PyAV's plain decode order: the analysis must too (no
    inverse telecine or other decode filter on these clips), and cover each clip whole."""
    clips = set(CUTS["clip"]) | set(HOLDS["clip"])
    assert set(real.names) == clips
    rows = real.sources.set_index("name")
    for clip, name in real.names.items():
        assert rows.loc[name, "status"] == "ok", rows.loc[name, "error"]
        frames = real.frames[real.frames["source"] == name]["frame"]
        assert frames.tolist() == list(range(int(rows.loc[name, "frames"]))), clip


def test_cuts_against_the_hand_checked_cuts(real: RealRun) -> None:
    scores = [cut_score(real, clip) for clip in real.names]
    for s in scores:
        print(f"\n{s.clip}: {s.found} of {s.true} cuts found, missed {s.missed}, "
              f"false {s.false}, inside dissolves {s.in_dissolve}", end="")
    true = sum(s.true for s in scores)
    found = sum(s.found for s in scores)
    false = sum(len(s.false) + len(s.in_dissolve) for s in scores)
    recall, precision = found / true, found / max(found + false, 1)
    print(f"\nreal cuts: recall {recall:.3f} ({found} of {true}), precision {precision:.3f}")
    assert recall >= 0.98 and precision >= 0.98
    assert not any(s.in_dissolve for s in scores)


def test_held_drawings_against_the_hand_labelled_pairs(real: RealRun) -> None:
    scores = [hold_score(real, clip) for clip in real.names]
    for s in scores:
        print(f"\n{s.clip}: same kept together {s.same_kept} of {s.same}, changes apart "
              f"{s.change_apart} of {s.change}; split {s.split}, merged {s.merged}", end="")
    same, kept = sum(s.same for s in scores), sum(s.same_kept for s in scores)
    change, apart = sum(s.change for s in scores), sum(s.change_apart for s in scores)
    accuracy = (kept + apart) / (same + change)
    print(f"\nreal pairs: accuracy {accuracy:.3f}, same recall {kept / same:.3f} ({same}), "
          f"change recall {apart / change:.3f} ({change})")
    # Issue 20's bars. Measured: accuracy 0.978, same 0.958, change 0.982; what is left
    # wrong is mostly changes smaller than film noise (Steamboat's whistle, 421-439).
    assert kept / same >= 0.95 and apart / change >= 0.95
    assert accuracy >= 0.97


def test_no_kept_triplet_crosses_a_true_cut_or_dissolve(real: RealRun) -> None:
    bad = crossing(real)
    kept = int(real.triplets["keep"].sum())
    print(f"\nreal: {kept} kept triplets, {len(bad)} across a true cut or into a dissolve")
    assert kept > 0
    assert bad.empty, bad[["source", "f0", "f1", "f2"]]


def test_no_evaluated_triplet_crosses_a_true_cut(real: RealRun, tmp_path: Path) -> None:
    """What the evaluate stage scores: the test split of what the shard stage packs
    (``load_kept``: the kept rows, each shard by its split). Steamboat Willie, a
    held-out work, is among the truth's clips, so the test split is not empty."""
    real.triplets.to_parquet(tmp_path / FILTERED_TABLE)
    kept = load_kept(tmp_path)
    test = kept[kept["split"] == "test"].assign(keep=True)
    bad = crossing(dataclasses.replace(real, triplets=test))
    print(f"\nreal: {len(test)} test-split triplets, {len(bad)} across a true cut or dissolve")
    assert len(test) > 0 and set(test["source"]) >= {real.names["steamboat_willie_excerpt_cropped.mp4"]}
    assert bad.empty, bad[["source", "f0", "f1", "f2"]]
