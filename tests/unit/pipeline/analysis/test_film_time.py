"""A triplet's ``t`` in film time across an old conversion's repeats and drops.

Decoded frame numbers are not the true time of a converted source: Popeye part 2 repeats
a frame at every i % 4 == 0 and drops the film frame between decoded 4k+1 and 4k+2, so
decoded frames 3..7 show film frames f, f, f+1, f+3, f+4 (``pipeline.analysis.cadence``). Three
levels of evidence that ``t`` follows the film:

- units: :func:`film_time` on constructed motion, and ``candidate_triplets`` on a
  hand-made frames table;
- exact truth: a synthetic converted clip (``FilmSpec``, whose truth knows the film
  frame each decoded frame shows) through detect_cuts and extract_triplets, every
  correct triplet's ``t`` equal to the truth's, where the frame fraction is not;
- the shipped real clip: Popeye part 2 through detect_cuts with params.yaml, its drop
  found where the hand check saw it (phase 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from support.real_truth import ROOT, real_params

from pipeline.analysis import analyse as detect_cuts
from pipeline.analysis.cadence import (
    NO_DROP,
    Cadence,
    film_time,
    find_cadence,
    find_drop,
)
from pipeline.core.config import CutsParams, TripletParams, parse_params
from pipeline.curation import extract as extract_triplets
from pipeline.curation.triplets import candidate_triplets, drawings_of
from pipeline.sources import download
from pipeline.synth import FilmSpec, generate

PERIOD = 4
# One converted clip of 8 s, small: a panned shot on ones, a still camera, a pan again
# (seed 0), every film effect but the repeats off so the drawings are exact.
CONVERTED = FilmSpec(
    clips=1, seed=0, width=128, height=96, fps=24, seconds=8.0, crf=20,
    min_shot_seconds=2.0, max_shot_seconds=4.0, static_prob=0.0, repeat_prob=0.0,
    pan_ones_prob=1.0, repeat_every=PERIOD, repeat_from_clip=0,
)
REAL_SOURCE = "popeye-sindbad-part2"


def steps(times: np.ndarray) -> list[int]:
    """Film frames from each frame to the next, as ints (they are whole numbers)."""
    return np.diff(times).astype(int).tolist()


def no_cuts(n: int) -> np.ndarray:
    start = np.zeros(n, bool)
    start[0] = True
    return start


def converted_motion(n: int, period: int, repeat: int, fast: int | None, seed: int = 0) -> np.ndarray:
    """Motion on ones (2-12 grey levels) with a codec-noise copy at phase ``repeat`` and,
    at phase ``fast``, twice the motion (the step over a dropped film frame)."""
    motion = np.random.default_rng(seed).uniform(2.0, 12.0, n)
    phase = np.arange(n) % period
    if fast is not None:
        motion[phase == fast] *= 2
    motion[phase == repeat] = 0.3
    return motion


def timed(motion: np.ndarray, fps: float) -> tuple[Cadence, np.ndarray]:
    """The cadence detect_cuts finds (with its drop) and the film time it gives."""
    cadence = find_cadence(motion, no_cuts(len(motion)))
    assert cadence is not None
    cadence = find_drop(motion, no_cuts(len(motion)), cadence, fps)
    return cadence, film_time(len(motion), cadence)


# --- units ----------------------------------------------------------------------------


def test_a_24_fps_conversion_steps_0_1_2_1() -> None:
    cadence, times = timed(converted_motion(400, 4, repeat=0, fast=2), 24.0)
    assert (cadence.period, cadence.phase, cadence.drop) == (4, 0, 2)
    assert steps(times)[3:11] == [0, 1, 2, 1, 0, 1, 2, 1]  # into frames 4..11
    assert (times[::4] == np.arange(0, 400, 4)).all()  # the content keeps its speed: 4 film frames a period


def test_a_30_fps_conversion_only_repeats() -> None:
    """24 -> 30 fps shows every film frame, one twice a period: no drop, whatever moves most."""
    cadence, times = timed(converted_motion(400, 5, repeat=3, fast=1), 30.0)
    assert (cadence.period, cadence.phase, cadence.drop) == (5, 3, NO_DROP)
    assert steps(times)[:10] == [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]


def test_without_a_cadence_the_time_is_the_frame_number() -> None:
    assert film_time(7, None).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert film_time(7, None).dtype == np.float64


def test_a_triplet_over_a_repeat_and_a_drop_takes_t_from_film_time() -> None:
    """Decoded 3, 4 (repeat of 3), 5, 6, 7 show film frames f, f, f+1, f+3, f+4: the
    drawings starting at 3, 5, 6 are at t = 1/3, not the frame fraction 2/3."""
    n = 8
    times = film_time(n, Cadence(4, 0, 1.0, drop=2))
    frames = pd.DataFrame({
        "source": "s", "frame": np.arange(n), "pts": np.arange(n) / 24.0, "time": times,
        "scene": np.zeros(n, np.int32), "drawing": [0, 1, 2, 3, 3, 4, 5, 6],
        "phash": np.arange(n, dtype=np.uint64), "dhash": np.arange(n, dtype=np.uint64),
    })
    cands = candidate_triplets(drawings_of(frames, TripletParams()), TripletParams()).set_index("f0")
    assert cands.loc[3, ["f1", "f2", "span"]].tolist() == [5, 6, 3]
    assert cands.at[3, "t"] == pytest.approx(1 / 3) and cands.at[3, "t_pts"] == pytest.approx(2 / 3)


# --- exact truth: a synthetic converted clip through the stages --------------------------


@dataclass(frozen=True)
class ConvertedRun:
    truth: pd.DataFrame  # one clip, indexed by decoded frame
    decoded: pd.DataFrame
    frames: pd.DataFrame
    candidates: pd.DataFrame


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> ConvertedRun:
    """Generate the clip, then download -> detect_cuts -> extract_triplets as the stages
    run them (default params)."""
    root = tmp_path_factory.mktemp("converted")
    out = generate(CONVERTED, root / "videos", name="conv")
    params = parse_params({"sources": [{"name": "conv", "kind": "path", "path": str(out.videos[0]),
                                        "license": "CC0-1.0"}]})
    got = download.run_download(params, root / "raw", root=root)
    download.write_outputs(got, root / "raw")
    cuts = detect_cuts.run_detect_cuts(CutsParams(), root / "raw", root / "analysis")
    detect_cuts.write_outputs(cuts, root / "analysis")
    extracted = extract_triplets.run_extract(root / "analysis", TripletParams())
    return ConvertedRun(out.truth.set_index("frame"), cuts.decoded, cuts.frames, extracted.candidates)


def true_triplet(drawing: np.ndarray, f0: int, f1: int, f2: int) -> bool:
    """f0, f1, f2 are the first frames of three consecutive truth drawings (no
    transition frame, none missed or split between them)."""
    run = drawing[f0 : f2 + 1]
    starts_there = f0 == 0 or drawing[f0 - 1] != drawing[f0]
    return bool((run >= 0).all() and starts_there and (run[: f1 - f0] == drawing[f0]).all()
                and (run[f1 - f0 : f2 - f0] == drawing[f1]).all() and drawing[f2] != drawing[f1])


def truth_t(film_frame: np.ndarray, cands: pd.DataFrame) -> np.ndarray:
    """The true t of each triplet: its frames' film frames' fraction."""
    f0, f1, f2 = (film_frame[cands[f"f{k}"].to_numpy()] for k in range(3))
    return (f1 - f0) / (f2 - f0)


def test_the_converted_clip_is_found_with_its_drop(converted: ConvertedRun) -> None:
    row = converted.decoded.iloc[0]
    assert (row["repeat_period"], row["repeat_phase"], row["repeat_drop_phase"]) == (PERIOD, 0, 2)
    assert converted.frames["time"].dtype == np.float64
    assert steps(converted.frames["time"].to_numpy())[3:7] == [0, 1, 2, 1]


def test_triplet_t_is_the_true_film_time(converted: ConvertedRun) -> None:
    """Every triplet whose drawings are the truth's has the truth's t, from after the
    first period: the generator starts dropping in the second (it never runs ahead of
    the film), a start ``film_time`` cannot see, so triplets over frame 2 are off there.
    The frame fraction, the old ``t``, differs from the truth on nearly all of them.
    Measured: 139 candidates, 139 with true drawings, 135 after the first period; t
    equal on 135, the frame fraction on none."""
    cands = converted.candidates
    drawing = converted.truth["drawing"].to_numpy()
    film_frame = converted.truth["film_frame"].to_numpy()
    right = np.array([true_triplet(drawing, *f) for f in cands[["f0", "f1", "f2"]].itertuples(index=False)])
    checked = cands[right & (cands["f0"] >= PERIOD).to_numpy()]
    expected = truth_t(film_frame, checked)
    fraction = (checked["f1"] - checked["f0"]) / (checked["f2"] - checked["f0"])
    wrong_before = float((np.abs(fraction.to_numpy() - expected) > 1e-9).mean())
    print(f"\n{len(cands)} candidates, {int(right.sum())} with true drawings, {len(checked)} checked; "
          f"the frame fraction was wrong on {wrong_before:.3f}")
    assert right.mean() >= 0.9 and len(checked) >= 100
    np.testing.assert_allclose(checked["t"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert wrong_before >= 0.9  # measured 1.000: the test fails on the frame fraction


# --- the shipped real clip ---------------------------------------------------------------


@pytest.fixture(scope="module")
def popeye(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.Series, pd.DataFrame]:
    """Popeye part 2 through download -> detect_cuts with params.yaml (its decoded row
    and frames); about 15 s."""
    tmp = tmp_path_factory.mktemp("popeye")
    raw, _ = real_params()
    raw["sources"] = [s for s in raw["sources"] if s["name"] == REAL_SOURCE]
    params = parse_params(raw)
    result = download.run_download(params, tmp / "raw", root=ROOT, partial_dir=tmp / "partial")
    download.write_outputs(result, tmp / "raw")
    cuts = detect_cuts.run_detect_cuts(params.cuts, tmp / "raw", tmp / "analysis", holds=params.triplets)
    return cuts.decoded.set_index("source").loc[REAL_SOURCE], cuts.frames


def test_popeye_part_2_drops_at_phase_2(popeye: tuple[pd.Series, pd.DataFrame]) -> None:
    """The hand check: i % 4 == 0 repeats i - 1, and a pan moves 0, 12, 24, 12 px at
    phases 0-3, so the film frame before phase 2 is the one dropped."""
    decoded, frames = popeye
    assert (decoded["repeat_period"], decoded["repeat_phase"], decoded["repeat_drop_phase"]) == (4, 0, 2)
    times = frames["time"].to_numpy()
    assert steps(times)[:8] == [1, 2, 1, 0, 1, 2, 1, 0]  # into frames 1..8
    assert (times[::4] == frames["frame"].to_numpy()[::4]).all()  # 4 film frames a period of 4
