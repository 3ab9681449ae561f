"""The hold rule (``pipeline.analysis.holds``) on image sequences whose drawings are known
by construction (grain, a small local change, a pan on ones, a slow move), on the
real-like synthetic truth, and the app's stream deciding holds as detect_cuts does."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pandas as pd
import pytest
from support.analysis_tables import (
    frames_from_images,
    our_drawing_ids,
    pairing_accuracy,
    synthetic_analysis,
    truth_drawing_ids,
)
from support.real_like import REAL_LIKE_SPEC

from pipeline.analysis.holds import (
    MIN_NOISE_PAIRS,
    NOISE_SHARE,
    HoldTracker,
    NoiseLevel,
    change_grid,
    drawing_ids,
    gradient,
    local_change,
    noise_local_change,
    shift_change,
)
from pipeline.core.config import TripletParams
from pipeline.curation.extract import run_extract
from vfi.app.analysis import FrameMeter
from vfi.app.analysis import SceneDrawings as StreamHolds

# --- the hold rule on images with known drawings ---------------------------------------

H, W = 96, 128
NO_SHIFT = {"hold_min_shift": 1e9}  # the shift measure's gate out of reach: the other two decide


def texture(seed: int, margin: int = 40) -> np.ndarray:
    """A smooth random grey texture (float), larger than the frame so it can pan."""
    rng = np.random.default_rng(seed)
    coarse = rng.random(((H + margin) // 8, (W + margin) // 8)).astype(np.float32)
    return 40 + 160 * cv2.resize(coarse, (W + margin, H + margin), interpolation=cv2.INTER_CUBIC)


def with_grain(pictures: list[np.ndarray], sd: float, seed: int) -> list[np.ndarray]:
    """Independent Gaussian grain on every frame (held frames included), as uint8."""
    rng = np.random.default_rng(seed)
    return [np.clip(np.rint(p + rng.normal(0, sd, p.shape)), 0, 255).astype(np.uint8) for p in pictures]


def held(drawings: list[np.ndarray], holds: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames showing each drawing ``hold`` times, and the truth's drawing id per frame."""
    frames = [d for d, h in zip(drawings, holds) for _ in range(h)]
    return frames, np.repeat(np.arange(len(holds)), holds)


def same_as_previous(ids: np.ndarray) -> np.ndarray:
    return ids[1:] == ids[:-1]


def hold_ids(images: list[np.ndarray], **params) -> np.ndarray:
    """The ``drawing`` column detect_cuts' feature code writes for these frames."""
    return frames_from_images(images, "x", holds=TripletParams(**params))["drawing"].to_numpy()


def test_a_small_local_change_under_grain_starts_a_drawing():
    """A 6x6 "mouth" changing by 30 grey levels, held on twos and threes, under grain
    (sd 6) on every frame: each change is found, no hold is split. A mean over the frame
    cannot tell: no threshold on it separates the changed pairs from the held ones."""
    base = texture(1)[:H, :W]
    drawings = []
    for k in range(10):
        d = base.copy()
        d[40:46, 60:66] = 60 + 30 * (k % 4)
        drawings.append(d)
    holds = [2, 3] * 5
    pictures, truth = held(drawings, holds)
    images = with_grain(pictures, 6.0, seed=2)
    ids = hold_ids(images)
    assert (same_as_previous(ids) == same_as_previous(truth)).all()
    motion = frames_from_images(images, "x")["motion"].to_numpy()[1:]
    changed = ~same_as_previous(truth)
    assert motion[changed].min() < motion[~changed].max()


def test_a_source_that_opens_on_small_changes_does_not_learn_them_as_noise():
    """Steamboat Willie opens on a shot drawn on ones whose changes are steam puffs: small,
    local, and the hashes let them through as "held". Learnt as noise, they raised the
    local gate past themselves (7 puffs merged). Here a 6x6 puff moves every frame for 16
    frames under grain (sd 4), then a drawing is held on threes: every puff is its own
    drawing, and no hold after it is split."""
    base = texture(11)[:H, :W]
    drawings = []
    for k in range(16):
        d = base.copy()
        d[30 + (k % 3) * 4:36 + (k % 3) * 4, 20 + 5 * k:26 + 5 * k] = 230
        drawings.append(d)
    holds = [1] * 16 + [3] * 6
    for k in range(6):
        d = base.copy()
        d[50:70, 10 + 15 * k:30 + 15 * k] = 20
        drawings.append(d)
    pictures, truth = held(drawings, holds)
    ids = hold_ids(with_grain(pictures, 4.0, seed=12))
    assert (same_as_previous(ids) == same_as_previous(truth)).all()


def test_noise_local_change_predicts_noise_from_the_bulk_of_the_blocks():
    """Grain alone: the prediction is near the measured largest block change. Grain and a
    puff: the measure sees the puff, the prediction still the grain."""
    rng = np.random.default_rng(3)
    base = texture(4)[:H, :W]
    a, b = (change_grid(np.clip(np.rint(base + rng.normal(0, 6, base.shape)), 0, 255).astype(np.uint8), 4)
            for _ in range(2))
    grain = local_change(a, b)
    assert 0.6 * grain <= noise_local_change(a, b) <= 1.6 * grain
    puffed = b.copy()
    puffed[5:7, 9:11] += 80
    assert local_change(a, puffed) > 4 * grain
    assert noise_local_change(a, puffed) <= 1.6 * grain


def test_a_pan_on_ones_under_a_held_cel_is_a_drawing_every_frame():
    """The camera pans 1 px per frame over a textured background while the cel (a
    rectangle) is held on twos: every composited frame differs, so every frame is its
    own drawing (the project's definition), under grain too."""
    bg = texture(3)
    pictures = []
    for f in range(24):
        frame = bg[10:10 + H, f:f + W].copy()
        x = 20 + 6 * (f // 2)  # the cel moves on twos
        frame[30:60, x:x + 20] = 230
        pictures.append(frame)
    for sd in (0.0, 6.0):
        ids = hold_ids(with_grain(pictures, sd, seed=4))
        assert len(np.unique(ids)) == len(pictures), sd


AH, AW = 192, 256  # the analysis size of a 4:3 source (CutsParams.analysis_size)


def big_texture(seed: int, cell: int = 40) -> np.ndarray:
    """A smooth random grey texture (float) at analysis size plus room to pan."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((AH // cell + 3, AW // cell + 3)).astype(np.float32)
    return 70 + 100 * cv2.resize(coarse, (AW + 3 * cell, AH + 3 * cell), interpolation=cv2.INTER_CUBIC)


def window(tex: np.ndarray, x: float, y: float) -> np.ndarray:
    """The analysis-size window of ``tex`` at a sub-pixel offset (bilinear)."""
    m = np.float32([[1, 0, x], [0, 1, y]])
    return cv2.warpAffine(tex, m, (AW, AH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def panned_shot(speed: float, holds: list[int], seed: int) -> list[np.ndarray]:
    """A background panning ``speed`` px per frame (x, half that in y) under a cel (a
    bright box with a dark hole, strong edges) held ``holds`` frames per drawing."""
    tex, frames = big_texture(seed), []
    for k, hold in enumerate(holds):
        for _ in range(hold):
            f = len(frames)
            frame = window(tex, 10 + speed * f, 10 + 0.5 * speed * f)
            x = 40 + 12 * k
            frame[60:120, x:x + 40] = 220
            frame[70:110, x + 10:x + 30] = 40
            frames.append(frame)
    return frames


def test_the_shift_change_grows_with_the_shift_and_grain_has_no_common_shift():
    """On a clean texture the shift measure is proportional to a sub-pixel shift and one
    shift of the whole frame explains it (coherence ~1); grain alone fits tile shifts
    that point anywhere (one common shift explains about 1 / tiles of them)."""
    tex = big_texture(11)
    grids = {s: change_grid(np.clip(np.rint(window(tex, 10 + s, 10)), 0, 255).astype(np.uint8), 4)
             for s in (0.0, 0.1, 0.2, 0.4)}
    base = grids[0.0]
    grad = gradient(base, TripletParams().hold_shift_tiles)
    tiles = grad.tiles[0] * grad.tiles[1]
    m = {s: shift_change(base, grad, g) for s, g in grids.items() if s}
    assert 0 < m[0.1][0] < m[0.2][0] < m[0.4][0]
    assert m[0.4][0] / m[0.2][0] == pytest.approx(2.0, rel=0.2)
    assert min(c for _, c in m.values()) > 0.9
    frame = np.clip(np.rint(window(tex, 10, 10)), 0, 255)
    shares = []
    for seed in range(20):
        a, b = with_grain([frame, frame], 6.0, seed=seed)
        ga = change_grid(a, 4)
        shares.append(shift_change(ga, gradient(ga, 4), change_grid(b, 4))[1] * tiles)
    assert np.mean(shares) < NOISE_SHARE / 1.5


@pytest.mark.parametrize("speed", [0.3, 0.5])
def test_a_subpixel_pan_under_a_held_cel_and_grain_is_seen_by_the_shift_measure(speed):
    """A held opening shot, then the camera pans 0.3 or 0.5 px per frame at analysis size
    over a smooth texture while a high-contrast cel is held on threes, grain sd 6 on
    every frame. Every pan frame is a drawing; the shift measure finds nearly all, the
    local and spread measures alone only the cel changes (one pair in three) at 0.3 px.
    No held frame of the opening shot splits once the noise level has two samples."""
    found, alone = [], []
    for seed in range(1, 6):
        pictures = panned_shot(0.0, [24], seed + 10) + panned_shot(speed, [3] * 10, seed)
        images = with_grain(pictures, 6.0, seed=seed)
        ids, without = hold_ids(images), hold_ids(images, **NO_SHIFT)
        assert not (~same_as_previous(ids)[2:23]).any(), seed  # the opening shot stays held
        found.append((~same_as_previous(ids)[24:]).mean())
        alone.append((~same_as_previous(without)[24:]).mean())
    assert np.mean(found) >= 0.9 and min(found) >= 0.7, found  # measured 0.94-0.98, min 0.72
    assert np.mean(found) > np.mean(alone) + 0.1, (found, alone)


def moving_edge(position: float, contrast: float = 100.0) -> np.ndarray:
    """A tall bright bar whose left and right edges sit at sub-pixel ``position``
    (area-exact antialiasing, rendered 8x and averaged)."""
    ss = 8
    big = np.full((H * ss, W * ss), 60.0, np.float32)
    left = int(round(position * ss))
    big[8 * ss:88 * ss, left:left + 30 * ss] = 60.0 + contrast
    return cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)


def test_a_slow_move_on_ones_is_split_by_the_drift_rule():
    """An edge moving 0.15 px per frame (on ones: every frame a new drawing). Without the
    shift measure each step changes less than half the gate; against the anchor the
    change grows until it crosses the gate, and a last step that small says the frames
    in between moved too, so each becomes its own drawing. Without the drift rule they
    would merge into holds. The shift measure sees most steps by itself."""
    pictures = [moving_edge(40 + 0.15 * f) for f in range(30)]
    images = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in pictures]
    for params in ({}, NO_SHIFT):  # only the last, open drawing may stay merged
        assert len(np.unique(hold_ids(images, **params))) >= len(images) - 3, params
    without = len(np.unique(hold_ids(images, hold_drift=0.0, **NO_SHIFT)))
    assert without <= len(images) // 2
    assert len(np.unique(hold_ids(images, hold_drift=0.0))) > without


def test_the_noise_level_is_per_source_and_a_black_leader_counts_once():
    """Heavy grain (sd 10: held block changes above the 8-level floor) after a black
    leader of 30 identical frames. The leader is one noise sample of 0, not 29 (29 would
    keep the low quantile at 0 and leave the floor in charge), so once a dozen grain
    samples are in, the gate has risen and no grainy hold is split; the floor alone
    splits them. The same drawings clean (holds bit-identical: noise level 0) are all
    found, though each step (a brightness change) leaves the hashes as they were."""
    base = texture(5)[:H, :W]
    drawings = [base + 12 * k for k in range(10)]  # whole-frame brightness steps
    pictures, truth = held(drawings, [4] * 10)
    leader = [np.zeros((H, W), np.uint8)] * 30
    images = leader + with_grain(pictures, 10.0, seed=6)
    warm = slice(16, None)  # past the warm-up: a dozen samples make a steady low quantile
    split = lambda ids: ~same_as_previous(ids) & same_as_previous(truth)  # noqa: E731
    assert not split(hold_ids(images)[len(leader):])[warm].any()
    assert split(hold_ids(images, hold_noise_factor=0.0)[len(leader):])[warm].any()
    clean = hold_ids(with_grain(pictures, 0.0, seed=6))
    assert (same_as_previous(clean) == same_as_previous(truth)).all()


def test_noise_level_quantile_and_warm_up():
    level = NoiseLevel(0.5)
    assert level.value is None  # no sample: the floors decide
    for _ in range(MIN_NOISE_PAIRS):
        level.add(3.0)
    assert level.value == pytest.approx(3.0, abs=1 / 64)
    level.add(5.0)
    level.add(5.0)
    assert level.value == pytest.approx(5.0, abs=1 / 64)
    for _ in range(MIN_NOISE_PAIRS + 3):
        level.add(0.0)
    assert level.value == pytest.approx(0.0, abs=1 / 64)


def test_drift_revision_ids():
    """HoldTracker's split_back revises the frames since the anchor (pipeline view)."""
    tracker = HoldTracker(TripletParams(hold_min_change=8.0, **NO_SHIFT))
    grids = [change_grid(np.clip(np.rint(moving_edge(40 + 0.15 * f)), 0, 255).astype(np.uint8), 4)
             for f in range(12)]
    steps = [tracker.push(g, (0, 0)) for g in grids]
    assert any(s.split_back for s in steps)
    ids = drawing_ids(steps)
    assert (np.diff(ids) >= 0).all() and ids[0] == 0
    assert len(np.unique(ids)) == ids[-1] + 1  # consecutive ids after the revision


def test_the_stream_decides_holds_like_detect_cuts():
    """One code path: ``interpolate``'s streaming tracker, fed frames one at a time
    through its meter, gives the drawings the frames table has (no cuts, no drift)."""
    base = texture(7)[:H, :W]
    drawings = [base.copy() for _ in range(8)]
    for k, d in enumerate(drawings):
        d[20:30, 10 + 8 * k:20 + 8 * k] = 220
    pictures, _ = held(drawings, [2, 3, 1, 2, 3, 2, 2, 3])
    images = with_grain(pictures, 6.0, seed=8)
    table = hold_ids(images)
    meter, stream = FrameMeter(W, H, 192), StreamHolds(TripletParams())
    rgb = [np.repeat(i[..., None], 3, axis=2) for i in images]
    ours = np.array([stream.push(meter.measure(i, Fraction(i, 24), im))[1] for i, im in enumerate(rgb)])
    assert (same_as_previous(ours) == same_as_previous(table)).all()
    assert stream.drawing + 1 == len(np.unique(table))


# --- real-like ground truth: grain, pans on ones, slow moves -----------------------------

def pair_classes(truth: pd.DataFrame) -> np.ndarray:
    """The class of every frame pair (truth order), by what the later frame shows."""
    cls = np.select(
        [truth["transition"] != "", truth["camera"] == "pan_ones", truth["timing"] == "slow",
         truth["timing"] == "static"],
        ["transition", "pan_ones", "slow", "static"], "drawn")
    return cls[1:]


@pytest.fixture(scope="module")
def real_like_run(tmp_path_factory):
    data = synthetic_analysis(tmp_path_factory.mktemp("real_like"), REAL_LIKE_SPEC)
    return data, run_extract(data.analysis_dir, TripletParams())


def test_real_like_frames_map_to_the_truths_drawings(real_like_run):
    """Measured 0.995: 1 split (a static shot's first held frame), 4 merges (3 in pans on
    ones: 0.63 px per frame under a cel held on threes; 1 in a slow move). 0.991 before
    the noise samples were capped by their bulk and kept from moving pairs (issue 20). Before the shift measure 0.889 (99 pan merges: a
    per-block difference of a sub-pixel pan over smooth texture is within the grain);
    the old hash + mean-motion rule 0.775 with 85 splits."""
    data, result = real_like_run
    truth = data.truth.sort_values(["clip", "frame"], kind="stable")
    acc = pairing_accuracy(result.drawings, truth)
    ours, theirs = our_drawing_ids(result.drawings), truth_drawing_ids(truth)
    inside = truth["clip"].to_numpy()[1:] == truth["clip"].to_numpy()[:-1]
    so, st, cls = same_as_previous(ours), same_as_previous(theirs), pair_classes(truth)
    lines, by_class = [], {}
    for name in ("drawn", "static", "pan_ones", "slow", "transition"):
        m = inside & (cls == name)
        assert m.any(), f"the real-like set has no {name} pairs"
        by_class[name] = (so[m] == st[m]).mean()
        lines.append(f"{name} {by_class[name]:.3f} of {m.sum()} ({(so[m] & ~st[m]).sum()} merges, "
                     f"{(~so[m] & st[m]).sum()} splits)")
    print(f"\nreal-like pairing accuracy {acc.accuracy:.4f} over {acc.frames} pairs "
          f"({acc.splits} splits, {acc.merges} merges): " + "; ".join(lines))
    assert acc.accuracy >= 0.99  # measured 0.995
    assert acc.splits <= 0.005 * acc.frames  # measured 1 of 956
    assert by_class["drawn"] >= 0.99 and by_class["static"] >= 0.99 and by_class["transition"] >= 0.95
    assert by_class["pan_ones"] >= 0.975 and by_class["slow"] >= 0.95  # measured 0.988, 0.985
