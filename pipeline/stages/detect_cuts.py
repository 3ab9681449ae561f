"""detect_cuts stage: decode every source once, small, and describe every frame.

For each usable source in ``data/raw/sources.parquet`` a guarded worker process
(``pipeline.core.guard``) streams the frames at analysis size (``pipeline.media.video``, through the
source's recorded decode filter: inverse telecine, deinterlace, bar crop) and, in the
same pass, feeds them to the ``cuts.detector`` cut stream (``pipeline.analysis.detectors``; no
library is let open the file) and records per frame: perceptual hashes, luma mean/std,
motion against the previous frame, the detector's score, a small grey thumbnail and
the hold rule's drawing (``pipeline.analysis.holds``, the ``triplets.hold_*`` params). After the
pass, an old frame-rate conversion's repeat pattern, seen only over the whole source
(``pipeline.analysis.cadence``), joins the repeat frames to the drawing before them and sets
each frame's ``time`` in film frames (the frame number when there is none). Everything
later stages tune (holds, static shots, flashes, cross-fades, near-duplicates) is then
table work on these outputs, in ``--out`` (data/analysis):

- ``frames.parquet``  one row per decoded frame (see ``FRAME_COLUMNS``)
- ``scenes.parquet``  one row per scene (see ``SCENE_COLUMNS``)
- ``decoded.parquet`` one row per source: reader, frames, status, error, repeat pattern

Each source is one engine item (``pipeline.engine``, params ``engine``): local, or one
Ray task; either way the guarded worker runs inside it, and the source's tables are
written as a part in ``data/cache/parts/analysis/`` and then merged in source order, so
a killed run resumes with the sources it had not finished.

Status of a source (``decoded.parquet``):

- ``ok``: decoded to the end; ``error`` may carry a note (e.g. a reader fallback).
- ``partial``: a decode error ended it early, or it decoded fewer frames than the probe
  counted; the frames that did decode are kept, ``error`` says what happened.
- ``error``: nothing usable: the file would not open, the worker timed out or crashed,
  or fewer than ``MIN_FRAMES`` (3, one triplet) frames decoded. Such a source
  contributes no rows to frames/scenes: a 1- or 2-frame video can never give a
  triplet, and keeping its rows would only make every later stage special-case it.

Time is the container's presentation time (``pts``, seconds, not shifted to start at
0), never ``index / fps``, so variable-frame-rate sources are handled; the detector is
fed pts-backed timecodes too (``min_scene_len`` is converted with the average rate).
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
