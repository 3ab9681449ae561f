"""detect_cuts stage: decode every source once, small, and describe every frame.

Reads ``--raw`` (data/raw). Each usable source is decoded once at analysis size, in a
guarded worker and through its recorded decode filter, feeding the ``cuts.detector`` cut
stream and the hold rule (``triplets.hold_*``); an old conversion's repeat cadence then
sets each frame's ``time`` in film frames. Finished sources are kept as parts
(``data/cache/parts/analysis/``): a killed run resumes. Writes to ``--out``:

- ``frames.parquet``  one row per decoded frame: hashes, luma, motion, detector score,
                      thumbnail, scene, drawing, ``time``; ``pts`` in seconds
- ``scenes.parquet``  one row per scene
- ``decoded.parquet`` one row per source: reader, frames, repeats, ``error``, ``status``:
                      ``ok`` (decoded to the end), ``partial`` (ended early; frames kept)
                      or ``error`` (nothing usable, or under 3 frames: no rows above)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from pipeline.analysis.analyse import CutsResult, run_detect_cuts
from pipeline.core.config import Params
from pipeline.core.stage import reason_counts, run_stage
from pipeline.engine import make_engine


def summary(result: CutsResult, top: int = 5) -> str:
    """One line: sources by status, frames, scenes, cuts, and the commonest reasons."""
    status = Counter(result.decoded["status"])
    scenes = len(result.scenes)
    cuts = scenes - result.scenes["source"].nunique()
    line = (f"detect_cuts: {len(result.decoded)} source(s) ({status['ok']} ok, "
            f"{status['partial']} partial, {status['error']} failed), {len(result.frames)} frames, "
            f"{scenes} scenes, {cuts} cuts")
    bad = result.decoded[result.decoded["status"] != "ok"]
    if len(bad):
        line += f" ({reason_counts(bad['error'], top)})"
    return line


def _main(params: Params, args: argparse.Namespace) -> int:
    with make_engine(params) as engine:
        result = run_detect_cuts(params.cuts, args.raw, args.out, show_progress=True,
                                 holds=params.triplets, engine=engine)
    print(summary(result))
    if result.frames.empty:
        for row in result.decoded.itertuples():
            print(f"  {row.source}: {row.error}", file=sys.stderr)
        print("detect_cuts: no source could be analysed; stopping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("pipeline.stages.detect_cuts", __doc__, {"raw": "data/raw", "out": "data/analysis"},
                     _main, argv)


if __name__ == "__main__":
    sys.exit(main())
