"""Procedural synthetic cartoon source: H.264 clips plus exact per-frame ground truth.

Outlined flat-colour shapes over panning textured backgrounds, animated on ones, twos,
threes or mixed holds, cut into shots with hard cuts, static shots, repeated shots and
optional dissolves/flashes. The truth semantics are documented in
``pipeline.synth.generate``; what to generate is a ``SynthSpec`` (declared in
``pipeline.config``, which a ``kind: synthetic`` source extends).
"""

from pipeline.config import SynthSpec
from pipeline.synth.generate import TRUTH_COLUMNS, SynthOutput, generate, truth_table, write_truth
from pipeline.synth.plan import SetPlan, plan_set

__all__ = [
    "TRUTH_COLUMNS",
    "SetPlan",
    "SynthOutput",
    "SynthSpec",
    "generate",
    "plan_set",
    "truth_table",
    "write_truth",
]
