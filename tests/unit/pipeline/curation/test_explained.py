"""The ``unexplained`` check (issue 20): a triplet whose ends are two pictures is removed
even when the cut detector missed the cut between them.

Kernels on small arrays whose answer is known by construction (flicker, a pan, local
motion, another picture), then image-made triplets through detect_cuts' own thumbnails,
then the filter stage on synthetic sets with exact truth whose every hard cut is hidden
from the scenes (as if the detector had missed them all): every kept triplet across a
cut must be caught, and hardly any single-shot triplet removed. The figures are printed
(``-s``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from support.analysis_tables import (
    GROUND_TRUTH_SPEC,
    frames_from_images,
    synthetic_analysis,
    with_truth,
    write_analysis,
)
from support.real_like import REAL_LIKE_SPEC

from pipeline.core.config import FilterParams, TripletParams
from pipeline.curation.curate import run_filter
from pipeline.curation.explained import (
    mismatch,
    prepared,
    smoothed,
    triplet_scores,
    unexplained_score,
)
from pipeline.curation.extract import run_extract, write_outputs
from pipeline.curation.transitions import thumb_array
from pipeline.synth import SynthSpec
from pipeline.synth.render import smooth_noise

LIMIT = FilterParams().unexplained_limit
W, H = 128, 96


def texture(seed: int, width: int = 4 * W, height: int = 2 * H) -> np.ndarray:
    """A painted-looking grey background (smooth clouds under outlined discs), larger
    than a frame so that it can be panned."""
    img = (30 + 190 * smooth_noise(np.random.default_rng(seed), width, height, cell=24)).astype(np.uint8)
    rng = np.random.default_rng(seed + 100)
    for _ in range(30):
        centre, radius = (int(rng.integers(0, width)), int(rng.integers(0, height))), int(rng.integers(5, 20))
        cv2.circle(img, centre, radius, int(rng.integers(0, 255)), -1)
        cv2.circle(img, centre, radius, 0, 2)
    return img


def view(img: np.ndarray, x: int = 0, y: int = 0) -> np.ndarray:
    return img[y:y + H, x:x + W]


def with_disk(img: np.ndarray, x: float, y: float = 48, r: int = 16) -> np.ndarray:
    out = img.copy()
    cv2.circle(out, (int(x), int(y)), r, 250, -1)
    cv2.circle(out, (int(x), int(y)), r, 0, 2)
    return out


def score(images: list[np.ndarray]) -> float:
    """The unexplained score of one triplet of images, through detect_cuts' thumbnails."""
    thumbs = thumb_array(frames_from_images(images, "x")["thumb"].tolist())
    return float(triplet_scores(thumbs, np.array([0]), np.array([1]), np.array([2]))[0])


# --- kernels ----------------------------------------------------------------------------

def small(seed: int, side: int = 24) -> np.ndarray:
    """A smooth (side x side) float picture, bigger than a 16x16 thumbnail so it can move."""
    return (40 + 160 * smooth_noise(np.random.default_rng(seed), side, side, cell=6)).astype(np.float32)


def test_same_picture_relit_is_no_mismatch():
    pic = small(1)[:16, :16][None]
    assert mismatch(pic, pic)[0] == 0.0
    assert mismatch(pic, 0.7 * pic + 40)[0] < 1e-5          # flicker: gain and offset


def test_a_pan_and_small_motion_match_another_picture_does_not():
    pic = small(1)
    still = pic[4:20, 4:20][None]
    panned = pic[4:20, 7:23][None]                          # 3 px: a whole-frame shift
    nudged = still.copy()
    nudged[0, 6:10, 6:10] = pic[7:11, 7:11]                 # a patch moved by one pixel
    other = small(2)[4:20, 4:20][None]
    assert mismatch(still, panned)[0] < 0.1
    assert mismatch(still, nudged)[0] < 0.1
    assert mismatch(still, other)[0] > 0.5


def test_flat_frames_are_not_stretched_into_pictures():
    rng = np.random.default_rng(0)
    flat = 100 + rng.normal(0, 1, (2, 16, 16)).astype(np.float32)
    assert mismatch(flat[:1], flat[1:])[0] < 0.5 * mismatch(small(1)[:16, :16][None], small(2)[:16, :16][None])[0]


def test_smoothing_keeps_flat_areas_and_spreads_a_point_evenly():
    flat = np.full((1, 16, 16), 7.0, np.float32)
    assert np.allclose(smoothed(flat, 0.6), 7.0)
    point = np.zeros((1, 17, 17), np.float32)
    point[0, 8, 8] = 1.0
    out = smoothed(point, 0.6)[0]
    assert out.sum() == pytest.approx(1.0, abs=1e-5) and out.argmax() == 8 * 17 + 8
    assert np.allclose(out, out.T) and np.allclose(out, out[::-1, ::-1])
    z = prepared(small(1)[:16, :16][None])
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-5 and z.std() == pytest.approx(1.0, abs=1e-4)


def test_score_is_high_only_when_one_end_relates_to_neither_other_frame():
    m = np.array
    across = unexplained_score(m([0.05]), m([0.6]), m([0.6]))    # f2 is another picture
    assert across[0] == pytest.approx(1.15)
    assert unexplained_score(m([0.6]), m([0.05]), m([0.6]))[0] == pytest.approx(1.15)  # either side
    assert unexplained_score(m([0.3]), m([0.3]), m([0.3]))[0] == pytest.approx(0.3)    # fast, all alike
    assert unexplained_score(m([0.05]), m([0.6]), m([0.05]))[0] == pytest.approx(0.05)  # ends agree


def test_triplet_scores_measure_each_pair_once_and_need_consecutive_drawings():
    a, b = small(1), small(2)
    thumbs = np.stack([a[:16, :16], a[1:17, 1:17], a[2:18, 2:18], b[:16, :16], b[1:17, 1:17]])  # a cut after 2
    d0 = np.arange(3)
    got = triplet_scores(thumbs, d0, d0 + 1, d0 + 2)
    direct = unexplained_score(mismatch(thumbs[d0], thumbs[d0 + 1]), mismatch(thumbs[d0 + 1], thumbs[d0 + 2]),
                               mismatch(thumbs[d0], thumbs[d0 + 2]))
    assert np.allclose(got, direct)
    assert got[0] < LIMIT and (got[1:] >= LIMIT).all()      # one picture moving; then across the cut
    with pytest.raises(ValueError, match="consecutive"):
        triplet_scores(thumbs, d0[:1], d0[:1] + 2, d0[:1] + 3)


# --- image-made triplets ----------------------------------------------------------------

@pytest.mark.parametrize("step", [8, 16, 32])
def test_pans_fast_disks_and_flicker_are_explained(step):
    """Up to a quarter of the frame per drawing (32 px of 128: 4 thumbnail pixels)."""
    bg = texture(1)
    assert score([view(bg, step * k) for k in range(3)]) < LIMIT / 1.5
    assert score([view(bg, step * k, step * k // 2) for k in range(3)]) < LIMIT / 1.5
    assert score([with_disk(view(bg), 20 + step * k) for k in range(3)]) < LIMIT / 1.5
    lit = [np.clip(view(bg).astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
           for gain, offset in ((1, 0), (0.8, 30), (1.2, -20))]
    assert score(lit) < LIMIT / 1.5


def test_a_cut_on_either_side_of_the_middle_is_unexplained():
    a, b = texture(1), texture(2)
    assert score([view(a), view(a, 8), view(b)]) > 1.5 * LIMIT
    assert score([view(a), view(b), view(b, 8)]) > 1.5 * LIMIT
    assert score([np.full((H, W), 120, np.uint8), view(b), view(b, 8)]) > 1.5 * LIMIT   # from a blank card


# --- the stage, every cut hidden from the scenes ----------------------------------------

# Clean (all timings, static and repeated shots, dissolves, a flash) and real-like at
# thumbnail-equivalent size (grain, pans on ones, look-alike cuts, fades, slow motion).
HIDDEN_SPECS = {
    "clean": GROUND_TRUTH_SPEC,
    "real_like": REAL_LIKE_SPEC.model_copy(update={"width": W, "height": H}),
}
EARLIER = ("too_long_span", "static", "transition")   # reasons tested before ``unexplained``


def in_span(out: pd.DataFrame, truth: pd.DataFrame, marked: np.ndarray, before: int = 0) -> np.ndarray:
    """Per triplet: is a ``marked`` truth frame of its clip in (f0 - before, f2]."""
    frames = {c: g["frame"].to_numpy()[marked[g.index]] for c, g in truth.groupby("clip")}
    hit = [np.any((frames[s] > f0 - before) & (frames[s] <= f2))
           for s, f0, f2 in out[["source", "f0", "f2"]].itertuples(index=False)]
    return np.array(hit, bool)


def hidden_cut_run(root: Path, spec: SynthSpec) -> pd.DataFrame:
    """extract_triplets and filter (default params) on a synthetic set whose scenes are
    merged to one per clip, as if the detector had missed every cut; the filtered rows
    with ``cut`` (a hard cut between f0 and f2), ``single`` (one shot, no transition
    from the frame before f0 to f2) and ``eligible`` (no earlier reason removed it)."""
    data = synthetic_analysis(root, spec)
    analysis = write_analysis(data.frames.assign(scene=0), root / "merged")
    write_outputs(run_extract(analysis, TripletParams()), root / "triplets")
    out = with_truth(run_filter(analysis, root / "triplets", FilterParams()).filtered, data.truth)
    cut = in_span(out, data.truth, data.truth["is_cut_start"].to_numpy())
    touches = in_span(out, data.truth, data.truth["transition"].ne("").to_numpy(), before=2)
    return out.assign(cut=cut, single=~cut & ~touches & (out["shot0"] == out["shot2"]).to_numpy(),
                      eligible=~out["reason"].isin(EARLIER))


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    runs = [hidden_cut_run(tmp_path_factory.mktemp(name), spec).assign(set=name)
            for name, spec in HIDDEN_SPECS.items()]
    return pd.concat(runs, ignore_index=True)


def test_every_triplet_across_a_hidden_cut_is_caught(hidden):
    across = hidden[hidden["cut"] & hidden["eligible"]]
    caught = across["reason"] == "unexplained"
    print(f"\nhidden cuts: {len(across)} triplets across a cut that no earlier reason removed, "
          f"{int(caught.sum())} caught as unexplained (lowest score {across['unexplained'].min():.2f}, "
          f"limit {LIMIT})")
    assert len(across) >= 30 and set(across["set"]) == set(HIDDEN_SPECS)
    assert caught.all(), across.loc[~caught, ["set", "source", "f0", "f1", "f2", "unexplained"]]
    assert not hidden.loc[hidden["cut"], "keep"].any()


def test_hardly_any_single_shot_triplet_is_removed(hidden):
    single = hidden[hidden["single"] & hidden["eligible"]]
    removed = single["reason"] == "unexplained"
    print(f"\nsingle-shot triplets: {len(single)}, {int(removed.sum())} removed as unexplained "
          f"({removed.mean():.4f}); highest score {single['unexplained'].max():.2f}")
    assert len(single) >= 500
    assert removed.mean() <= 0.01
    assert single["unexplained"].max() < LIMIT / 1.2        # a margin, not a coincidence
