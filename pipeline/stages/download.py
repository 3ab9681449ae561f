"""download stage: bring every source into ``data/raw/`` and probe it.

Sources: synthetic clips, local files (copied), http(s) URLs (fetched with retries and
resume), video pages (resolved by yt-dlp, then fetched), and folders and CSV lists of
these (one source per file or row). Writes to ``--out`` (data/raw) the videos, the
synthetic clips' ground truth (``truth.parquet``) and ``sources.parquet``: one row per
video with its status, its probe (``frames``, ``fps``, ``width``/``height``: what the
file holds) and the decode filter later readers apply, from a scan for telecine,
interlace and bars (``download.scan``, ``download.crop_bars``): ``out_frames`` and
``out_fps`` after the filter, ``crop`` (``w:h:x:y``), ``scan_error`` if the scan failed
(then no filter). A bad source is recorded and skipped; the stage fails only if no
source is usable, or at once if two sources share a name. A source without a licence
(missing, empty or ``unknown``) is flagged, not refused: a warning names its params.yaml
entry to fix, and ``license_note`` records it.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.core.config import Params
from pipeline.core.stage import reason_counts, run_stage
from pipeline.engine import make_engine
from pipeline.sources.download import DownloadResult, run_download, write_outputs
from pipeline.sources.licences import licence_known


def summary(result: DownloadResult, top: int = 5) -> str:
    """One line: usable count and a capped count of failure reasons."""
    failed = [r for r in result.rows if r.status != "ok"]
    line = f"download: {len(result.usable)} usable video(s), {len(failed)} failed"
    if failed:
        line += f" ({reason_counts((r.error for r in failed), top)})"
    unlicensed = sum(1 for r in result.usable if not licence_known(r.license))
    if unlicensed:
        line += f"; {unlicensed} without a licence (see the warnings)"
    return line


def _main(params: Params, args: argparse.Namespace) -> int:
    with make_engine(params) as engine:
        result = run_download(params, args.out, root=args.params.parent, show_progress=True,
                              engine=engine)
    write_outputs(result, args.out)
    print(summary(result))
    if not result.usable:
        for row in result.rows:
            print(f"  {row.name}: {row.error}", file=sys.stderr)
        print("download: no usable source; stopping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("pipeline.stages.download", __doc__, {"out": "data/raw"}, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
