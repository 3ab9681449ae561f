"""The analysis stages on footage that looks like real transfers, against its exact truth.

``support.real_like`` sets turn on what the clean set of ``tests/project/test_accuracy.py`` lacks:
film grain on every frame under compression noise, camera pans on ones under held
cels, hard cuts between look-alike shots (static to static among them), fades to and
from black and white, slow sub-pixel motion, dissolves and flashes; and, as their own
sources, a letterboxed clip and a 3:2 telecined one. download -> detect_cuts ->
extract_triplets -> filter run with the default params, as ``dvc repro`` runs them.
The figures are printed (``-s``) and asserted against issue 12's bars.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from support.analysis_tables import pairing_accuracy
from support.cut_scores import cut_scores
from support.real_like import LETTERBOX_SPEC, REAL_LIKE_SPEC, TELECINE_SPEC
from support.stage_runs import Run, run_stages

GRADUAL = ("dissolve", "fade")  # gradual transitions: neither hard cuts nor motion


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_stages(tmp_path_factory.mktemp("real_like"), REAL_LIKE_SPEC)


def _touches(trip: pd.DataFrame, kinds: tuple[str, ...]) -> pd.Series:
    return trip[["transition0", "transition1", "transition2"]].isin(kinds).any(axis=1)


def _true_transition(trip: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Triplets spanning two shots, or with a fade, dissolve or flash frame anywhere from
    the frame before f0 to the last frame of d2's hold (the filter also removes the
    drawings next to a transition, whose held frames may run into it)."""
    marked = truth["transition"].ne("").to_numpy()
    index = {c: g.index.to_numpy() for c, g in truth.groupby("clip")}
    first = {c: int(i[0]) for c, i in index.items()}
    near = [bool(marked[first[s] + max(f0 - 1, 0): first[s] + f2 + max(hold, 1)].any())
            for s, f0, f2, hold in trip[["source", "f0", "f2", "hold2"]].itertuples(index=False)]
    return pd.Series(near, index=trip.index) | (trip["shot0"] != trip["shot2"])


def test_hard_cuts_including_look_alike_ones(real: Run) -> None:
    fades = real.truth.assign(transition=real.truth["transition"].replace("fade", "dissolve"))
    s = cut_scores(real.frames, fades)
    look = real.truth.loc[real.truth["look_alike"], ["clip", "frame"]]
    starts = set(map(tuple, real.frames.loc[real.frames["scene"].diff().fillna(0).ne(0),
                                             ["source", "frame"]].to_numpy()))
    found = sum(any((c, f + d) in starts for d in (-1, 0, 1)) for c, f in look.itertuples(index=False))
    print(f"\nreal-like cuts: precision {s['precision']:.3f} (raw {s['raw_precision']:.3f}), "
          f"recall {s['recall']:.3f}; {s['cuts']} hard cuts ({len(look)} look-alike, {found} "
          f"found), {s['found']} found, {s['in_dissolve']} inside gradual transitions")
    assert s["precision"] >= 0.98 and s["recall"] >= 0.98
    assert found == len(look)


def test_frames_assigned_to_the_right_drawing_under_grain_and_pans(real: Run) -> None:
    acc = pairing_accuracy(real.drawings, real.truth)
    print(f"\nreal-like drawings: accuracy {acc.accuracy:.4f} over {acc.frames} frame pairs "
          f"({acc.splits} holds split, {acc.merges} changes merged)")
    assert acc.accuracy >= 0.99


def test_no_kept_triplet_touches_a_gradual_transition_or_a_cut(real: Run) -> None:
    kept = real.triplets[real.triplets["keep"]]
    bad = kept[_touches(kept, GRADUAL + ("flash",)) | (kept["shot0"] != kept["shot2"])]
    print(f"\nreal-like: {len(kept)} kept, {len(bad)} touching a transition or a cut")
    assert bad.empty, bad[["source", "f0", "f1", "f2"]]


def test_no_kept_triplet_from_a_repeated_shot(real: Run) -> None:
    kept = real.triplets[real.triplets["keep"]]
    repeated = kept[(kept["repeat_of0"] >= 0) & (kept["repeat_of0"] == kept["repeat_of2"])]
    print(f"\nreal-like: {len(repeated)} kept triplets from repeated shots")
    assert repeated.empty, repeated[["source", "f0", "f1", "f2"]]


def test_transition_removals_are_true_transitions(real: Run) -> None:
    """Removed as ``transition`` only where a frame is a fade, dissolve or flash (or the
    drawing next to one, which the filter dilates into); slow motion and pans stay."""
    trip = real.triplets
    removed = trip[trip["reason"] == "transition"]
    motion = ~_true_transition(removed, real.truth)
    gradual = trip[_touches(trip, GRADUAL) & (trip["reason"].isin(["", "transition"]))]
    caught = float((gradual["reason"] == "transition").mean()) if len(gradual) else 1.0
    print(f"\nreal-like transitions: {len(removed)} removed, {int(motion.sum())} of them "
          f"motion; {len(gradual)} triplets touch a fade or dissolve, {caught:.3f} removed")
    assert len(removed) > 0 and motion.sum() <= 0.05 * len(removed)


def test_interpolate_never_blends_across_a_cut(real: Run, tmp_path: Path) -> None:
    """``interpolate --factor 2`` on the clip with the static -> static look-alike cut:
    the in-between before each cut is nearer the frame before it than a 50/50 blend."""
    from vfi.app.interpolate import Options, run_interpolate

    truth = real.truth
    look = truth[truth["look_alike"]]
    clip = str(look["clip"].iloc[0])
    src_path = real.root / "raw" / real.sources.set_index("name").loc[clip, "path"]
    params = tmp_path / "params.yaml"
    params.write_text("sources: [{name: synthetic, kind: synthetic}]\n")
    out = tmp_path / "out.mp4"
    run_interpolate(Options(src=src_path, out=out, params=params, method="blend"))
    src, got = _decode(src_path), _decode(out)
    cuts = truth.loc[(truth["clip"] == clip) & truth["is_cut_start"], "frame"].to_numpy()
    blended = [c for c in cuts if _nearer_blend(got[2 * c - 1], src[c - 1], src[c])]
    print(f"\nreal-like interpolate: {len(blended)} of {len(cuts)} cuts blended")
    assert len(cuts) > 0 and not blended


def _changes(frames: pd.DataFrame, by: str) -> set[tuple[str, int]]:
    """(clip, frame) of every frame whose drawing differs from the previous frame's."""
    out = set()
    for clip, part in frames.groupby(by):
        drawing = part.sort_values("frame")["drawing"].to_numpy()
        out |= {(str(clip), int(f)) for f in np.flatnonzero(drawing[1:] != drawing[:-1]) + 1}
    return out


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float32)


def _nearer_blend(out: np.ndarray, before: np.ndarray, after: np.ndarray) -> bool:
    mix = 0.5 * (before + after)
    return float(np.abs(out - mix).mean()) < float(np.abs(out - before).mean())


def test_letterbox_is_cropped_and_its_moving_triplets_kept(tmp_path: Path) -> None:
    run = run_stages(tmp_path, LETTERBOX_SPEC, name="boxed")
    spec = LETTERBOX_SPEC
    w, h = spec.width - 2 * spec.pillarbox, spec.height - 2 * spec.letterbox
    crops = set(run.sources["crop"])
    kept = run.triplets[run.triplets["keep"]]
    print(f"\nletterbox: crop {crops}, {len(kept)} of {len(run.triplets)} triplets kept")
    assert crops == {f"{w}:{h}:{spec.pillarbox}:{spec.letterbox}"}
    assert len(kept) > 0 and pairing_accuracy(run.drawings, run.truth).accuracy >= 0.99


def test_telecine_gives_back_the_progressive_frames(tmp_path: Path) -> None:
    run = run_stages(tmp_path, TELECINE_SPEC, name="tc")
    verdicts = set(zip(run.sources["scan"], run.sources["pattern"], run.sources["field_order"]))
    acc = pairing_accuracy(run.drawings, run.truth)
    removed = run.triplets[run.triplets["reason"] == "transition"]
    print(f"\ntelecine: {verdicts}, {len(run.frames)} frames for {len(run.truth)} progressive, "
          f"drawings {acc.accuracy:.4f}, {len(removed)} removed as transition")
    assert verdicts == {("telecine", "3:2", "tff")}
    assert len(run.frames) == len(run.truth)
    # In bit-exact holds FFmpeg's decimate may drop a held copy instead of the pulldown
    # duplicate (they are the same pixels), moving that drawing change by one frame:
    # every change must still be there, within a frame.
    ours, theirs = _changes(run.frames, "source"), _changes(run.truth, "clip")
    missed = [(c, f) for c, f in theirs if not any((c, f + d) in ours for d in (-1, 0, 1))]
    print(f"telecine: {len(theirs) - len(missed)} of {len(theirs)} drawing changes within a frame")
    assert not missed
    assert _true_transition(removed, run.truth).all()
