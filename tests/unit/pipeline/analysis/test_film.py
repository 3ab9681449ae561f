"""Old film in the synthetic source (``pipeline.synth.film``) and the hold rule under it.

Hand-checked Steamboat Willie and Popeye (``data/real/truth/README.md``) showed four kinds
of noise the synthetic sets lacked: brightness flicker, gate weave, dust and an old
conversion's periodic repeat frames. The generator tests check the noise is really in
the pixels while the truth keeps every held drawing one drawing; the FILM_SPEC tests
score the current hold rule against that truth, so progress (or its absence) on film is
a number, not an impression.
"""

from __future__ import annotations

import filecmp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.analysis_tables import (
    AnalysisSet,
    PairingAccuracy,
    our_drawing_ids,
    pairing_accuracy,
    synthetic_analysis,
    truth_drawing_ids,
    write_analysis,
)
from support.real_like import FILM_SPEC

from pipeline.analysis.cadence import Cadence, find_cadence, hold_repeats
from pipeline.core.config import ConfigError, TripletParams
from pipeline.curation.extract import run_extract
from pipeline.synth import (
    TRUTH_COLUMNS,
    FilmSpec,
    SynthSpec,
    film_frames,
    generate,
    plan_set,
    truth_table,
)
from pipeline.synth.generate import progressive_frames

SMALL = dict(clips=1, seed=3, width=128, height=96, seconds=3.0, min_shot_seconds=0.5, max_shot_seconds=1.5,
             static_prob=0.3, repeat_prob=0.0)


def decoded_order(spec: SynthSpec, clip: int = 0) -> list[np.ndarray]:
    """Every frame of one clip as the encoder gets it (before any compression)."""
    plan = plan_set(spec)
    return [image for image, count in progressive_frames(spec, plan.clips[clip], clip) for _ in range(count)]


def same_as_previous(ids: np.ndarray) -> np.ndarray:
    return np.asarray(ids)[1:] == np.asarray(ids)[:-1]


# --- the generator ------------------------------------------------------------------------

def test_all_off_film_spec_is_the_plain_spec_byte_for_byte(tmp_path: Path) -> None:
    """A FilmSpec with every film option off must not disturb existing sets at all."""
    plain = generate(SynthSpec(**SMALL, grain=3.0), tmp_path / "plain")
    film = generate(FilmSpec(**SMALL, grain=3.0), tmp_path / "film")
    assert filecmp.cmp(plain.videos[0], film.videos[0], shallow=False)
    pd.testing.assert_frame_equal(plain.truth, film.truth)


def test_repeat_every_one_is_rejected() -> None:
    """A period of 1 would make every frame a repeat of itself: nonsense, so an error."""
    with pytest.raises(ConfigError, match="repeat_every"):
        FilmSpec(repeat_every=1)


def test_weave_and_flicker_keep_held_drawings_one_drawing() -> None:
    """Noise changes pixels, not drawings: the truth is the plain spec's plus the film
    columns, and every held pair really differs (the effects are there to be survived)."""
    spec = FilmSpec(**SMALL, flicker=12.0, weave=1.0)
    truth = truth_table(plan_set(spec), "s")
    plain = truth_table(plan_set(SynthSpec(**SMALL)), "s")
    pd.testing.assert_frame_equal(truth[list(TRUTH_COLUMNS)], plain)
    assert not truth["repeat"].any() and (truth["film_frame"] == truth["frame"]).all()
    frames = decoded_order(spec)
    held = np.flatnonzero(same_as_previous(truth["drawing"]) & (truth["drawing"].to_numpy()[1:] >= 0)) + 1
    assert len(held) > 20
    diffs = [np.abs(frames[i].astype(int) - frames[i - 1]).mean() for i in held]
    assert min(diffs) > 0, "a held pair came out pixel-identical: weave/flicker missing"


def test_dust_adds_specks_on_single_frames() -> None:
    """Dust is a few small blobs on one frame each: held frames differ in a few pixels only."""
    spec = FilmSpec(**SMALL, dust=3.0)
    clean, dusty = decoded_order(SynthSpec(**SMALL)), decoded_order(spec)
    changed = [int((a != b).any(axis=2).sum()) for a, b in zip(clean, dusty)]
    assert 0 < np.mean(changed) <= 3 * 9 * 2  # about 3 specks of at most 3 x 3 px
    assert sum(c > 0 for c in changed) > 0.8 * len(changed)


def test_conversion_repeats_are_pixel_copies_with_exact_truth() -> None:
    """Frame i % 4 == 0 repeats i - 1 exactly (noise and all), one film frame a period is
    dropped, and the truth says which film frame each output frame shows."""
    spec = FilmSpec(**SMALL, grain=3.0, flicker=8.0, repeat_every=4)
    truth = truth_table(plan_set(spec), "s")
    plain = truth_table(plan_set(SynthSpec(**SMALL)), "s")
    n = len(truth)
    shown = film_frames(n, 4)
    assert (truth["film_frame"].to_numpy() == shown).all()
    assert (truth["repeat"].to_numpy() == ((np.arange(n) % 4 == 0) & (np.arange(n) > 0))).all()
    assert (np.diff(shown[4::4]) == 4).all() and (np.abs(shown - np.arange(n)) <= 1).all()  # keeps its speed
    assert shown.max() <= n - 1 and len(set(range(n)) - set(shown)) == (n - 1) // 4  # one dropped a period
    assert (truth["drawing"].to_numpy() == plain["drawing"].to_numpy()[shown]).all()
    frames = decoded_order(spec)
    for i in range(1, n):
        copy = np.array_equal(frames[i], frames[i - 1])
        assert copy == bool(truth.at[i, "repeat"]), f"frame {i}: copy {copy}, truth {truth.at[i, 'repeat']}"


def test_converted_holds_count_the_frames_shown() -> None:
    """``hold`` is how many frames a drawing is on screen after the conversion."""
    truth = truth_table(plan_set(FilmSpec(**SMALL, repeat_every=3)), "s")
    shots = truth[truth["drawing"] >= 0]
    counts = shots.groupby("drawing")["frame"].transform("size")
    assert (shots["hold"] == np.minimum(counts, 127)).all()


# --- the hold rule on FILM_SPEC --------------------------------------------------------------

@dataclass(frozen=True)
class FilmRun:
    data: AnalysisSet
    cadences: dict[str, Cadence | None]
    accuracy: PairingAccuracy


def with_cadence(frames: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Cadence | None]]:
    """The frames table after detect_cuts' ``analyse_one`` step the helper skips: each
    source's conversion repeats found and joined to the drawing before them."""
    frames = frames.copy()
    found = {}
    for source, rows in frames.groupby("source", sort=True):
        scene_start = rows["scene"].diff().fillna(1).ne(0).to_numpy()
        found[source] = cadence = find_cadence(rows["motion"].to_numpy(), scene_start)
        if cadence is not None:
            frames.loc[rows.index, "drawing"] = hold_repeats(rows["drawing"].to_numpy(),
                                                             rows["change"].to_numpy(), cadence)
    return frames, found


@pytest.fixture(scope="module")
def film_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[FilmRun, pd.DataFrame]:
    data = synthetic_analysis(tmp_path_factory.mktemp("film"), FILM_SPEC)
    frames, cadences = with_cadence(data.frames)
    write_analysis(frames, data.analysis_dir)
    drawings = run_extract(data.analysis_dir, TripletParams()).drawings
    return FilmRun(data, cadences, pairing_accuracy(drawings, data.truth)), drawings


def test_film_spec_has_what_film_has(film_run: tuple[FilmRun, pd.DataFrame]) -> None:
    """Twos and threes to hold, and one converted clip among clean ones."""
    truth = film_run[0].data.truth
    assert {"twos", "threes"} <= set(truth["timing"])
    converted = truth.groupby("clip")["repeat"].any()
    assert converted.tolist() == [False, False, True]


def test_hold_rule_on_film(film_run: tuple[FilmRun, pd.DataFrame]) -> None:
    """The current rule on flicker + weave + dust + grain, as a floor, not the goal.

    Target for film: pair accuracy >= 0.97, same-recall and change-recall >= 0.95 each.
    Measured with pipeline/analysis/holds.py as it stands: accuracy 0.541 over 429 pairs, 197
    splits, 0 merges; same-recall 0.176, change-recall 1.000. Shortfall: 0.45 of accuracy
    and 0.80 of same-recall; nearly every held pair splits (static shots 0.12, twos 0.50).
    The rule's film mode never switched on here (no held pair passed as a film-noise
    sample), so weave and flicker are judged as changes. Each effect alone splits too
    (accuracy with grain alone 0.995; + flicker 0.83, + weave 0.45, + dust 0.66).
    The asserts hold the measured level minus a margin, so a regression still fails.
    """
    run, drawings = film_run
    truth = run.data.truth.sort_values(["clip", "frame"], kind="stable")
    inside = same_as_previous(truth["clip"].to_numpy())
    ours = same_as_previous(our_drawing_ids(drawings))[inside]
    theirs = same_as_previous(truth_drawing_ids(truth))[inside]
    same_recall = float((ours & theirs).sum() / theirs.sum())
    change_recall = float((~ours & ~theirs).sum() / (~theirs).sum())
    acc = run.accuracy
    print(f"\nfilm pairing accuracy {acc.accuracy:.3f} over {acc.frames} pairs ({acc.splits} splits, "
          f"{acc.merges} merges); same-recall {same_recall:.3f}, change-recall {change_recall:.3f} "
          f"(target 0.97 / 0.95 / 0.95)")
    assert acc.accuracy >= 0.52  # measured 0.541
    assert same_recall >= 0.15  # measured 0.176
    assert change_recall >= 0.99  # measured 1.000
    assert acc.merges <= 2  # measured 0


def test_conversion_repeats_are_held(film_run: tuple[FilmRun, pd.DataFrame]) -> None:
    """The cadence is found on the converted clip alone (period 4, phase 0), and its
    repeat frames join the drawing before them. Measured: 35 of 35 repeats held."""
    run, drawings = film_run
    assert {k: (c.period, c.phase) if c else None for k, c in run.cadences.items()} == {
        "synthetic-00": None, "synthetic-01": None, "synthetic-02": (4, 0)}
    truth = run.data.truth.sort_values(["clip", "frame"], kind="stable")
    held = np.r_[False, same_as_previous(our_drawing_ids(drawings))]
    repeat = truth["repeat"].to_numpy()
    share = float(held[repeat].mean())
    print(f"\nconversion repeats held: {int(held[repeat].sum())} of {int(repeat.sum())} ({share:.3f})")
    assert repeat.sum() >= 30 and share >= 0.95
