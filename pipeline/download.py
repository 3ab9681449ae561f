"""download stage: bring every source into ``data/raw/`` and probe it.

Sources are synthetic clips (generated here, with their ground truth), local files
(copied) or http(s) URLs (fetched with retries and resume). Each resulting video gets a
row in ``sources.parquet`` with its probe and a status; a bad source is recorded and
skipped so that the others proceed. The stage fails only when no source is usable.

Each usable video is also scanned (``pipeline.scan``, params ``download.scan``,
``download.crop_bars``) for telecine / interlace and constant bars; the verdict is the
decode filter every later reader applies. ``frames``, ``fps`` and ``width``/``height``
stay what the file holds (the probe: demuxed packets, stream rate, coded size);
``out_frames``/``out_fps`` are what a reader delivers after the filter (after 3:2
decimation 4 of every 5 frames, ~23.976 fps), and ``crop`` (``w:h:x:y``) the picture
inside the bars. A scan that fails leaves the source unfiltered with ``scan_error``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from pipeline import atomic
from pipeline.config import (
    DownloadParams,
    Params,
    PathSource,
    Source,
    SyntheticSource,
    UrlSource,
)
from pipeline.fetch import FetchError, FetchPolicy, fetch, sha256_file
from pipeline.probe import ProbeError, probe
from pipeline.progress import progress
from pipeline.scan import scan_source
from pipeline.stage import reason_counts, run_stage
from pipeline.synth import generate, write_telecine_truth, write_truth
from pipeline.tables import SOURCES_TABLE

log = logging.getLogger("inbetweener.download")

VIDEO_EXTS = {".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".gif", ".ts", ".mpg", ".flv"}
TRUTH_TABLE = "truth.parquet"
TELECINE_TABLE = "telecine.parquet"
PARTIAL_DIR = Path("data/cache/partial")


@dataclass
class SourceRow:
    """One video (or one failed source) as recorded in ``sources.parquet``."""

    name: str
    origin: str
    kind: str
    uri: str
    license: str
    attribution: str
    split: str = "auto"
    path: str = ""
    bytes: int = 0
    sha256: str = ""
    container: str = ""
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = 0
    duration: float = 0.0
    status: str = "ok"
    error: str = ""
    # The decode filter (pipeline.scan.SCAN_COLUMNS); defaults: nothing to do.
    scan: str = "progressive"
    field_order: str = ""
    pattern: str = ""
    out_fps: float = 0.0
    out_frames: int = 0
    crop: str = ""
    scan_error: str = ""


@dataclass
class DownloadResult:
    """What the stage produced: the table rows and any synthetic ground truth."""

    rows: list[SourceRow] = field(default_factory=list)
    truth: list[pd.DataFrame] = field(default_factory=list)
    telecine: list[pd.DataFrame] = field(default_factory=list)  # field maps of telecined ones

    @property
    def usable(self) -> list[SourceRow]:
        return [r for r in self.rows if r.status == "ok"]

    def table(self) -> pd.DataFrame:
        cols = list(SourceRow.__dataclass_fields__)
        df = pd.DataFrame([asdict(r) for r in self.rows], columns=cols)
        return df.astype({"bytes": "int64", "width": "int32", "height": "int32", "frames": "int64",
                          "out_frames": "int64"})


def _row(src: Source, name: str, uri: str) -> SourceRow:
    return SourceRow(name=name, origin=src.name, kind=src.kind, uri=uri,
                     license=src.license, attribution=src.attribution, split=src.split)


def _fail(row: SourceRow, reason: str) -> SourceRow:
    row.status, row.error = "error", reason
    log.warning("source %s skipped: %s", row.name, reason)
    return row


def _extension(location: str) -> str:
    """Keep a known video extension; readers sniff content, so anything else is fine."""
    suffix = PurePosixPath(urlparse(location).path).suffix.lower()
    return suffix if suffix in VIDEO_EXTS else ".video"


def finish_file(row: SourceRow, path: Path, raw_dir: Path, sha: str | None = None,
                params: DownloadParams | None = None) -> SourceRow:
    """Probe and scan a file now in ``raw_dir`` and fill the row; a file that fails the
    probe is removed (one whose scan fails is kept, unfiltered, with ``scan_error``)."""
    row.path = path.relative_to(raw_dir).as_posix()
    row.bytes = path.stat().st_size
    row.sha256 = sha or sha256_file(path)
    try:
        info = probe(path)
    except ProbeError as exc:
        path.unlink(missing_ok=True)
        return _fail(row, f"probe: {exc.reason}")
    for key in ("container", "codec", "pix_fmt", "width", "height", "fps", "frames", "duration"):
        setattr(row, key, getattr(info, key))
    params = params or DownloadParams()
    scanned = scan_source(path, info.fps, info.frames, info.duration, scan=params.scan,
                          crop_bars=params.crop_bars, budget=params.scan_frames)
    for key, value in scanned.columns().items():
        setattr(row, key, value)
    return row


def run_synthetic(src: SyntheticSource, raw_dir: Path, result: DownloadResult,
                  show_progress: bool = False, params: DownloadParams | None = None) -> None:
    """Generate the clips of a synthetic source; its truth table joins the result."""
    out = generate(src.spec(), raw_dir, name=src.name, show_progress=show_progress)
    for video in out.videos:
        row = _row(src, video.stem, f"synthetic:{src.name}?seed={src.seed}")
        result.rows.append(finish_file(row, video, raw_dir, params=params))
    result.truth.append(out.truth)
    if out.telecine is not None:
        result.telecine.append(out.telecine)


def run_path(src: PathSource, raw_dir: Path, root: Path,
             params: DownloadParams | None = None) -> SourceRow:
    """Copy a local file into ``raw_dir`` (atomically), checking its pinned sha256."""
    origin = (root / src.path).resolve()
    # The path as params.yaml gives it: an absolute path of this checkout would make the
    # tables (and everything hashed after them) differ from clone to clone.
    row = _row(src, src.name, Path(src.path).as_posix())
    if not origin.is_file():
        return _fail(row, f"no such file: {origin}")
    sha = sha256_file(origin)
    if src.sha256 and sha != src.sha256:
        return _fail(row, f"sha256 mismatch: expected {src.sha256}, got {sha}")
    dest = raw_dir / f"{src.name}{_extension(origin.name)}"
    with atomic.atomic_path(dest) as tmp:
        shutil.copyfile(origin, tmp)
    return finish_file(row, dest, raw_dir, sha, params)


def run_url(src: UrlSource, raw_dir: Path, policy: FetchPolicy, partial_dir: Path,
            params: DownloadParams | None = None) -> SourceRow:
    """Fetch a URL with retries/resume; keep the partial outside ``raw_dir`` for re-runs."""
    row = _row(src, src.name, src.url)
    dest = raw_dir / f"{src.name}{_extension(src.url)}"
    partial_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(src.url.encode()).hexdigest()[:16]
    try:
        got = fetch(src.url, dest, policy, sha256=src.sha256,
                    partial=partial_dir / f"{src.name}-{key}.part")
    except FetchError as exc:
        return _fail(row, exc.reason)
    return finish_file(row, dest, raw_dir, got.sha256, params)


def policy_from(params: DownloadParams) -> FetchPolicy:
    return FetchPolicy(**params.fetch_policy())


def run_download(params: Params, raw_dir: Path, root: Path = Path("."),
                 partial_dir: Path | None = None, show_progress: bool = False) -> DownloadResult:
    """Process every source in order; never lets one bad source stop the others."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    partial_dir = partial_dir if partial_dir is not None else root / PARTIAL_DIR
    policy = policy_from(params.download)
    result = DownloadResult()
    for src in progress(params.sources, desc="download", unit="source", enabled=show_progress):
        if isinstance(src, SyntheticSource):
            run_synthetic(src, raw_dir, result, show_progress, params.download)
        elif isinstance(src, PathSource):
            result.rows.append(run_path(src, raw_dir, root, params.download))
        else:
            result.rows.append(run_url(src, raw_dir, policy, partial_dir, params.download))
    return result


def write_outputs(result: DownloadResult, raw_dir: Path) -> None:
    """Write ``sources.parquet`` (always), ``truth.parquet`` (when there is truth) and
    ``telecine.parquet`` (when a synthetic source is telecined: which progressive frame
    each field of each encoded frame shows)."""
    atomic.write_parquet(result.table(), raw_dir / SOURCES_TABLE)
    if result.truth:
        write_truth(pd.concat(result.truth, ignore_index=True), raw_dir / TRUTH_TABLE)
    if result.telecine:
        write_telecine_truth(pd.concat(result.telecine, ignore_index=True), raw_dir / TELECINE_TABLE)


def summary(result: DownloadResult, top: int = 5) -> str:
    """One line: usable count and a capped count of failure reasons."""
    failed = [r for r in result.rows if r.status != "ok"]
    line = f"download: {len(result.usable)} usable video(s), {len(failed)} failed"
    if failed:
        line += f" ({reason_counts((r.error for r in failed), top)})"
    return line


def _main(params: Params, args: argparse.Namespace) -> int:
    result = run_download(params, args.out, root=args.params.parent, show_progress=True)
    write_outputs(result, args.out)
    print(summary(result))
    if not result.usable:
        for row in result.rows:
            print(f"  {row.name}: {row.error}", file=sys.stderr)
        print("download: no usable source; stopping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("pipeline.download", __doc__, {"out": "data/raw"}, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
