"""Synthetic sets that look like real transfers, for the accuracy tests (issue 12).

``REAL_LIKE_SPEC`` turns on everything a real film transfer adds that the clean
``support.analysis_tables.GROUND_TRUTH_SPEC`` lacks: film grain on every frame (held
drawings included) under H.264 compression noise, camera pans on ones under cels held
on twos or threes, hard cuts between shots of look-alike palette (one static to static
at least), fades to and from black or white, slow sub-pixel motion, dissolves and
flashes, static and repeated shots. Its seed is the lowest whose plan has every one of
those (``missing_features`` says which are absent; ``tests/unit/pipeline/synth/test_synth.py`` checks it is
none), so no feature is missing by chance. Sized so decoding plus analysis takes
seconds: 4 clips x 10 s at 256 x 192.

``LETTERBOX_SPEC`` and ``TELECINE_SPEC`` are small separate sets for bar detection and
inverse telecine: the bars and the 3:2 pulldown change every frame of a source, so
they get their own sources rather than being mixed into the accuracy set.

``FILM_SPEC`` is what hand-checked old film (``data/real/truth/README.md``) adds on top of
grain: brightness flicker, gate weave, dust specks and, on its last clip, an old
frame-rate conversion's periodic repeats (``pipeline.synth.film``).
"""

from __future__ import annotations

import pandas as pd

from pipeline.synth import FilmSpec, SynthSpec

REAL_LIKE_SPEC = SynthSpec(
    clips=4, seed=0, width=256, height=192, fps=24, seconds=10.0, crf=23,
    min_shot_seconds=0.75, max_shot_seconds=2.0,
    static_prob=0.2, repeat_prob=0.3, transition_prob=0.15,
    grain=6.0, pan_ones_prob=0.5, similar_cut_prob=0.3, fade_prob=0.15, slow_prob=0.15,
)

# 1 clip of 4 s, bars a few macroblocks thick on all four sides (picture 224 x 120).
LETTERBOX_SPEC = SynthSpec(
    clips=1, seed=2, width=256, height=192, fps=24, seconds=4.0, crf=20,
    min_shot_seconds=0.75, max_shot_seconds=2.0, static_prob=0.2, repeat_prob=0.0,
    grain=4.0, letterbox=36, pillarbox=16,
)

# 2 clips of 4 s (96 progressive frames each -> 120 telecined at 30 fps), no grain so
# field matching is exact up to codec noise.
TELECINE_SPEC = SynthSpec(
    clips=2, seed=4, width=256, height=192, fps=24, seconds=4.0, crf=18,
    min_shot_seconds=0.75, max_shot_seconds=2.0, static_prob=0.2, repeat_prob=0.0,
    telecine=True,
)

# 3 clips of 6 s: shots on twos, threes, mixed (and, as every plan has, ones and a static
# shot), grain 4, flicker up to 16 grey levels a jump, weave up to 0.6 px a frame per axis
# (frame-to-frame jumps up to ~1.2 px: Steamboat's measured at analysis size, median 0.5,
# largest 1.4), 1.5 specks a frame;
# the last clip repeats every frame i % 4 == 0 (Popeye part 2's cadence).
FILM_SPEC = FilmSpec(
    clips=3, seed=0, width=256, height=192, fps=24, seconds=6.0, crf=23,
    min_shot_seconds=0.75, max_shot_seconds=2.0, static_prob=0.2, repeat_prob=0.0,
    grain=4.0, flicker=16.0, weave=0.6, dust=1.5, repeat_every=4, repeat_from_clip=2,
)


def missing_features(truth: pd.DataFrame) -> list[str]:
    """The real-transfer features a truth table lacks (empty when it has them all)."""
    first = truth[truth["shot"] >= 0].drop_duplicates("shot")
    clip_of = dict(zip(first["shot"], first["clip"]))
    cut_rows = truth.index[truth["look_alike"]]
    static_pair = any(
        bool(truth.at[i, "is_static_shot"]) and bool(truth.at[i - 1, "is_static_shot"]) for i in cut_rows
    )
    checks = {
        "timings": set(truth["timing"]) >= {"ones", "twos", "threes", "mixed", "static", "slow"},
        "pan_ones": (truth["camera"] == "pan_ones").any(),
        "pan_ones under held cels": (truth.loc[truth["camera"] == "pan_ones", "timing"] != "ones").any(),
        "pan": (truth["camera"] == "pan").any(),
        "look_alike": bool(len(cut_rows)),
        "look_alike static->static": static_pair,
        "fade": (truth["transition"] == "fade").any(),
        "dissolve": (truth["transition"] == "dissolve").any(),
        "flash": (truth["transition"] == "flash").any(),
        "repeat across clips": any(clip_of[r.repeat_of] != r.clip for r in first.itertuples() if r.repeat_of >= 0),
    }
    return [name for name, ok in checks.items() if not ok]
