"""download stage: bring every source into ``data/raw/`` and probe it.

Sources are synthetic clips (generated here, with their ground truth), local files
(copied), http(s) URLs (fetched with retries and resume), video pages (resolved by
yt-dlp, ``pipeline.sources.page``, then fetched like a URL), and folders and CSV lists of
those, expanded into one source per file or row first (``pipeline.sources.entries``). Each
resulting video gets a row in ``sources.parquet`` with its probe and a status; a bad
source is recorded and skipped so that the others proceed. The stage fails only when
no source is usable.

The driver expands the entries once (:func:`pipeline.sources.entries.expand_sources`, which
stops the stage on a name clash before any work) and hands each entry to
:func:`download_entry`, a module-level function of picklable arguments that never
raises for a bad source, so an engine can run entries anywhere and in any order and
the driver still assembles the same tables in entry order.

Each usable video is also scanned (``pipeline.media.scan``, params ``download.scan``,
``download.crop_bars``) for telecine / interlace and constant bars; the verdict is the
decode filter every later reader applies. ``frames``, ``fps`` and ``width``/``height``
stay what the file holds (the probe: demuxed packets, stream rate, coded size);
``out_frames``/``out_fps`` are what a reader delivers after the filter (after 3:2
decimation 4 of every 5 frames, ~23.976 fps), and ``crop`` (``w:h:x:y``) the picture
inside the bars. A scan that fails leaves the source unfiltered with ``scan_error``.

A source without a licence (``license`` missing, empty or ``unknown``) is flagged, not
refused (``pipeline.sources.licences``): a warning per source names the params.yaml entry to
fix, ``license_note`` records it in ``sources.parquet`` and the summary line counts
them; the export card then marks those works as not to be redistributed.
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
