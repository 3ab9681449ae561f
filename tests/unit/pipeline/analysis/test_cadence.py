"""Conversion repeats (``pipeline.analysis.cadence``): found from the motion column, held together.

Unit tests on plain arrays, with the patterns the real clips show: Popeye part 2 repeats
frame i-1 at every i % 4 == 0 (through pans and action), Steamboat Willie is animated on
twos (every even frame held), and most footage has no pattern at all. Popeye part 2 also
drops the film frame between decoded frames 4k+1 and 4k+2: the picture moves twice as far
into phase 2.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.cadence import (
    NO_DROP,
    Cadence,
    drops_per_period,
    find_cadence,
    find_drop,
    hold_repeats,
)


def moving(n: int, seed: int = 0) -> np.ndarray:
    """Per-frame motion of footage moving on ones: 2-12 grey levels, at random."""
    return np.random.default_rng(seed).uniform(2.0, 12.0, n)


def no_cuts(n: int) -> np.ndarray:
    start = np.zeros(n, bool)
    start[0] = True
    return start


def test_a_repeat_every_fourth_frame_is_found_with_its_phase() -> None:
    motion = moving(400)
    motion[np.arange(400) % 4 == 1] = 0.3  # codec noise only: a copy of the frame before
    got = find_cadence(motion, no_cuts(400))
    assert got is not None and (got.period, got.phase) == (4, 1) and got.share > 0.95


def test_animation_on_twos_is_no_conversion_pattern() -> None:
    """Holds on every even frame are minima at phases 0 and 2 of a period of 4 alike."""
    motion = moving(400)
    motion[::2] = 0.4
    assert find_cadence(motion, no_cuts(400)) is None


@pytest.mark.parametrize("seed", range(5))
def test_footage_without_a_pattern_has_none(seed: int) -> None:
    motion = moving(600, seed)
    held = np.random.default_rng(100 + seed).random(600) < 0.3  # holds at random places
    motion[held] = 0.4
    assert find_cadence(motion, no_cuts(600)) is None


def test_a_still_source_says_nothing() -> None:
    """Neighbours under MIN_MOTION are not judged: a static shot has no cadence."""
    motion = np.full(400, 0.2)
    motion[np.arange(400) % 4 == 0] = 0.1
    assert find_cadence(motion, no_cuts(400)) is None


def test_cuts_are_not_counted_against_the_pattern() -> None:
    """A scene's first frame moves like a cut; the pattern is judged around it."""
    motion = moving(400)
    motion[np.arange(400) % 5 == 3] = 0.3
    start = no_cuts(400)
    cuts = np.arange(23, 400, 40)  # on the repeat phase: each cut frame moves a lot
    motion[cuts] = 60.0
    start[cuts] = True
    got = find_cadence(motion, start)
    assert got is not None and (got.period, got.phase) == (5, 3)


def test_repeats_join_the_drawing_before_unless_they_changed() -> None:
    drawing = np.arange(12)  # every frame its own drawing (a pan on ones)
    change = np.full(12, 5.0)
    change[[4, 8]] = 1.3  # repeats the hold rule just split: close to the frame before
    change[0] = 0.0
    got = hold_repeats(drawing, change, Cadence(4, 0, 0.95))
    # frame 0 is a source's first frame; 4 and 8 join 3 and 7; ids renumbered from 0
    assert got.tolist() == [0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9]
    change[8] = 40.0  # a cut or a real change on the phase stays apart
    assert hold_repeats(drawing, change, Cadence(4, 0, 0.95)).tolist()[7:10] == [6, 7, 8]


def test_a_repeat_inside_a_longer_hold_changes_nothing() -> None:
    drawing = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])
    change = np.array([0.0, 0.2, 0.3, 8.0, 0.4, 9.0, 0.1, 0.2, 7.0])
    assert hold_repeats(drawing, change, Cadence(3, 1, 0.9)).tolist() == drawing.tolist()


# --- the dropped film frame ----------------------------------------------------------


@pytest.mark.parametrize(("period", "fps", "drops"), [
    (4, 24.0, 1),  # Popeye part 2: 4 film frames a period, 3 shown
    (5, 30.0, 0),  # 24 -> 30 fps: 4 film frames in 5 decoded, all shown
    (3, 24.0, 1),  # 3 film frames, 2 shown
    (4, 25.0, 1),  # PAL speed-up: 3.84 film frames, rounds to 4
    (4, 12.0, 1),  # 8 film frames, 3 shown: clipped, the time model has one drop a period
    (5, 60.0, 0),  # 2 film frames, 4 shown: clipped at none
    (4, 0.0, 0),  # unknown rate: no drop guessed
])
def test_the_frame_rates_say_whether_a_period_drops_a_film_frame(period: int, fps: float, drops: int) -> None:
    assert drops_per_period(period, fps) == drops


def popeye_motion(n: int, seed: int = 0) -> np.ndarray:
    """Motion of a 24 fps transfer like Popeye part 2: a repeat at phase 0, two film
    frames' worth of motion into phase 2, one into phases 1 and 3."""
    motion = moving(n, seed)
    phase = np.arange(n) % 4
    motion[phase == 0] = 0.3
    motion[phase == 2] *= 2
    return motion


def test_the_drop_is_at_the_phase_that_moves_most() -> None:
    motion = popeye_motion(400)
    cadence = find_cadence(motion, no_cuts(400))
    assert cadence is not None and cadence.drop == NO_DROP  # find_cadence leaves it to find_drop
    assert find_drop(motion, no_cuts(400), cadence, 24.0).drop == 2


def test_no_drop_where_the_rates_say_none_however_the_motion_looks() -> None:
    motion = popeye_motion(400)
    assert find_drop(motion, no_cuts(400), Cadence(4, 0, 0.95), 32.0).drop == NO_DROP  # 3 film frames, 3 shown


def test_the_repeat_phase_is_never_the_drop() -> None:
    """Even when the repeat phase's frames move most (a repeat that changed: the cadence
    found from its minima elsewhere), the drop is among the other phases."""
    motion = popeye_motion(400)
    motion[np.arange(400) % 4 == 0] = 100.0
    assert find_drop(motion, no_cuts(400), Cadence(4, 0, 0.95), 24.0).drop == 2


def test_scene_starts_and_still_frames_do_not_pick_the_drop() -> None:
    """A cut moves a lot and a held shot not at all: neither is the conversion's step."""
    motion = popeye_motion(400)
    phase = np.arange(400) % 4
    start = no_cuts(400)
    cuts = np.flatnonzero(phase == 3)[::2]  # half of phase 3's frames: cuts
    motion[cuts] = 80.0
    start[cuts] = True
    motion[(phase == 2) & (np.arange(400) >= 200)] = 0.1  # phase 2 holds still half the time
    assert find_drop(motion, start, Cadence(4, 0, 0.95), 24.0).drop == 2
