"""Procedural synthetic cartoon source: H.264 clips plus exact per-frame ground truth.

Outlined flat-colour shapes over panning textured backgrounds, animated on ones, twos,
threes or mixed holds, cut into shots with hard cuts, static shots, repeated shots and
optional dissolves/flashes/fades; optionally what real transfers add (film grain, pans
on ones, look-alike cuts, slow sub-pixel motion, letterbox bars, 3:2 pulldown) and, with
a ``FilmSpec``, what an old print adds (flicker, gate weave, dust, conversion repeats:
``pipeline.synth.film``). The truth semantics are documented in
``pipeline.synth.generate``; what to generate is a ``SynthSpec`` (declared in
``pipeline.core.config``, which a ``kind: synthetic`` source extends).
"""

from pipeline.core.config import SynthSpec
from pipeline.synth.film import FILM_COLUMNS, FilmSpec, film_frames
from pipeline.synth.generate import (
    TELECINE_COLUMNS,
    TRUTH_COLUMNS,
    SynthOutput,
    generate,
    telecine_table,
    truth_table,
    write_telecine_truth,
    write_truth,
)
from pipeline.synth.plan import SetPlan, picture_size, plan_set

__all__ = [
    "FILM_COLUMNS",
    "FilmSpec",
    "TELECINE_COLUMNS",
    "TRUTH_COLUMNS",
    "SetPlan",
    "SynthOutput",
    "SynthSpec",
    "film_frames",
    "generate",
    "picture_size",
    "plan_set",
    "telecine_table",
    "truth_table",
    "write_telecine_truth",
    "write_truth",
]
