"""Fetch every source entry into data/raw and describe it: the library behind the download stage."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from pipeline.core import atomic
from pipeline.core.config import (
    VIDEO_EXTS,
    DownloadParams,
    PageSource,
    Params,
    PathSource,
    SyntheticSource,
    UrlSource,
)
from pipeline.core.progress import progress
from pipeline.core.tables import SOURCES_TABLE
from pipeline.engine import Engine, engine_map
from pipeline.engine.parts import PartStore, PartWriter, fingerprint
from pipeline.media.probe import ProbeError, probe
from pipeline.media.scan import scan_source
from pipeline.sources.entries import Entry, FailedEntry, Member, expand_sources
from pipeline.sources.fetch import FetchError, FetchPolicy, fetch, sha256_file
from pipeline.sources.licences import (
    licence_known,
    missing_licence_note,
    normalised_licence,
)
from pipeline.sources.page import PageError, resolve
from pipeline.sources.record import SourceRecord, records_table
from pipeline.synth import generate, write_telecine_truth, write_truth

log = logging.getLogger("inbetweener.download")

TRUTH_TABLE = "truth.parquet"
TELECINE_TABLE = "telecine.parquet"
PARTIAL_DIR = Path("data/cache/partial")
PART_RESULT = "result.pkl"  # an entry's EntryResult in its part folder (pipeline.engine.parts)


@dataclass
class DownloadResult:
    """What the stage produced: the table rows and any synthetic ground truth."""

    rows: list[SourceRecord] = field(default_factory=list)
    truth: list[pd.DataFrame] = field(default_factory=list)
    telecine: list[pd.DataFrame] = field(default_factory=list)  # field maps of telecined ones

    def add(self, got: EntryResult) -> None:
        """Append one entry's rows and tables (in entry order: the tables' order)."""
        self.rows.extend(got.rows)
        if got.truth is not None:
            self.truth.append(got.truth)
        if got.telecine is not None:
            self.telecine.append(got.telecine)

    @property
    def usable(self) -> list[SourceRecord]:
        return [r for r in self.rows if r.status == "ok"]

    def table(self) -> pd.DataFrame:
        return records_table(self.rows)


@dataclass
class EntryResult:
    """What one entry gave: its rows (one per video, or one error row) and, for a
    synthetic entry, its ground truth and telecine field map."""

    rows: list[SourceRecord] = field(default_factory=list)
    truth: pd.DataFrame | None = None
    telecine: pd.DataFrame | None = None


def _row(src: SyntheticSource | PathSource | UrlSource | PageSource, name: str,
         uri: str) -> SourceRecord:
    return SourceRecord(name=name, origin=src.name, kind=src.kind, uri=uri,
                     license=src.license, attribution=src.attribution, split=src.split)


def _fail(row: SourceRecord, reason: str) -> SourceRecord:
    row.status, row.error = "error", reason
    log.warning("source %s skipped: %s", row.name, reason)
    return row


def _extension(location: str) -> str:
    """Keep a known video extension; readers sniff content, so anything else is fine."""
    suffix = PurePosixPath(urlparse(location).path).suffix.lower()
    return suffix if suffix in VIDEO_EXTS else ".video"


def finish_file(row: SourceRecord, path: Path, raw_dir: Path, sha: str | None = None,
                params: DownloadParams | None = None) -> SourceRecord:
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


def run_synthetic(src: SyntheticSource, raw_dir: Path, show_progress: bool = False,
                  params: DownloadParams | None = None) -> EntryResult:
    """Generate the clips of a synthetic source, with its truth table."""
    out = generate(src.spec(), raw_dir, name=src.name, show_progress=show_progress)
    rows = [finish_file(_row(src, video.stem, f"synthetic:{src.name}?seed={src.seed}"),
                        video, raw_dir, params=params) for video in out.videos]
    return EntryResult(rows, out.truth, out.telecine)


def run_path(src: PathSource, raw_dir: Path, root: Path,
             params: DownloadParams | None = None) -> SourceRecord:
    """Copy a local file into ``raw_dir`` (atomically), checking its pinned sha256."""
    origin = (root / src.path).resolve()
    # The path as params.yaml gives it: an absolute path of this checkout would make the
    # tables (and everything hashed after them) differ from clone to clone.
    row = _row(src, src.name, Path(src.path).as_posix())
    if not origin.is_file():
        return _fail(row, f"no such file: {origin}")
    try:
        sha = sha256_file(origin)
    except OSError as exc:  # the source's problem (permissions, a dying disk), not the run's
        return _fail(row, f"cannot read: {exc.strerror or type(exc).__name__}")
    if src.sha256 and sha != src.sha256:
        return _fail(row, f"sha256 mismatch: expected {src.sha256}, got {sha}")
    dest = raw_dir / f"{src.name}{_extension(origin.name)}"
    with atomic.atomic_path(dest) as tmp:
        shutil.copyfile(origin, tmp)
    return finish_file(row, dest, raw_dir, sha, params)


def run_url(src: UrlSource, raw_dir: Path, policy: FetchPolicy, partial_dir: Path,
            params: DownloadParams | None = None) -> SourceRecord:
    """Fetch a URL with retries/resume; keep the partial outside ``raw_dir`` for re-runs."""
    return _fetch_into(_row(src, src.name, src.url), src.url, src.sha256, raw_dir, policy,
                       partial_dir, params)


def run_page(src: PageSource, raw_dir: Path, policy: FetchPolicy, partial_dir: Path,
             params: DownloadParams | None = None) -> SourceRecord:
    """Resolve a video page with yt-dlp, then fetch its media URL like a ``url`` source.

    The row's ``uri`` is the page (what params say); the media URL is only logged, as
    it may carry a short-lived token.
    """
    row = _row(src, src.name, src.url)
    try:
        link = resolve(src.url, policy)
    except PageError as exc:
        return _fail(row, f"page: {exc.reason}")
    log.info("page %s: video at %s (format %s)", src.url, link.url, link.format_id or "?")
    return _fetch_into(row, link.url, src.sha256, raw_dir, policy, partial_dir, params)


def _fetch_into(row: SourceRecord, url: str, sha256: str | None, raw_dir: Path,
                policy: FetchPolicy, partial_dir: Path,
                params: DownloadParams | None) -> SourceRecord:
    """``url`` into ``raw_dir/<name><ext>``; the partial is keyed by the URL, so a
    re-run resumes it only for the same URL."""
    dest = raw_dir / f"{row.name}{_extension(url)}"
    partial_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    try:
        got = fetch(url, dest, policy, sha256=sha256,
                    partial=partial_dir / f"{row.name}-{key}.part")
    except FetchError as exc:
        return _fail(row, exc.reason)
    return finish_file(row, dest, raw_dir, got.sha256, params)


def run_failed(entry: FailedEntry) -> SourceRecord:
    """The error row of an entry that could not be expanded (a folder, list or row)."""
    row = SourceRecord(name=entry.name, origin=entry.origin, kind=entry.kind, uri=entry.uri,
                    license=entry.license, attribution=entry.attribution, split=entry.split)
    return _fail(row, entry.reason)


def _member_row(member: Member, row: SourceRecord) -> SourceRecord:
    """A folder file or list row keeps its params entry as origin and kind."""
    row.origin, row.kind, row.uri = member.origin, member.kind, member.uri
    return row


def download_entry(entry: Entry, raw_dir: Path, root: Path, partial_dir: Path,
                   params: DownloadParams, show_progress: bool = False) -> EntryResult:
    """All the work of one expanded entry; a bad source is an error row, never raised.

    Module-level and of picklable arguments, so an engine can run it in a worker.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    policy = policy_from(params)
    if isinstance(entry, SyntheticSource):
        return run_synthetic(entry, raw_dir, show_progress, params)
    if isinstance(entry, FailedEntry):
        return EntryResult([run_failed(entry)])
    if isinstance(entry, Member):
        row = _concrete(entry.source, raw_dir, root, policy, partial_dir, params)
        return EntryResult([_member_row(entry, row)])
    if isinstance(entry, PageSource):
        return EntryResult([run_page(entry, raw_dir, policy, partial_dir, params)])
    return EntryResult([_concrete(entry, raw_dir, root, policy, partial_dir, params)])


def _concrete(src: PathSource | UrlSource, raw_dir: Path, root: Path, policy: FetchPolicy,
              partial_dir: Path, params: DownloadParams) -> SourceRecord:
    if isinstance(src, PathSource):
        return run_path(src, raw_dir, root, params)
    return run_url(src, raw_dir, policy, partial_dir, params)


def policy_from(params: DownloadParams) -> FetchPolicy:
    return FetchPolicy(**params.fetch_policy())


@dataclass(frozen=True)
class DownloadPart:
    """One entry's work as an engine item (picklable): download it into its part folder."""

    entry: Entry
    root: str
    partial_dir: str
    params: DownloadParams
    dest: str
    show_progress: bool = False


def download_part(part: DownloadPart) -> int:
    """Engine task: :func:`download_entry` into the part folder (its videos and
    ``result.pkl``, the rows and truth exactly as returned). Returns the row count."""
    with PartWriter(Path(part.dest)) as tmp:
        got = download_entry(part.entry, tmp, Path(part.root), Path(part.partial_dir),
                             part.params, show_progress=part.show_progress)
        (tmp / PART_RESULT).write_bytes(pickle.dumps(got, protocol=5))
    return len(got.rows)


def _local_file_state(entry: Entry, root: Path) -> list[int]:
    """Size and mtime of a local source file: an edited file makes its part stale even
    when params pin no sha256 (empty for other kinds)."""
    src = entry.source if isinstance(entry, Member) else entry
    if not isinstance(src, PathSource):
        return []
    try:
        st = (root / src.path).stat()
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns]


def _publish_row_file(row: SourceRecord, part_dir: Path, raw_dir: Path) -> None:
    """Put a part's video at ``raw_dir/row.path``: a hard link (no second copy), or a
    copy across filesystems; atomic either way."""
    src, dest = part_dir / row.path, raw_dir / row.path
    if dest.exists() and dest.samefile(src):
        return
    with atomic.atomic_path(dest) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def run_download(params: Params, raw_dir: Path, root: Path = Path("."),
                 partial_dir: Path | None = None, show_progress: bool = False,
                 engine: Engine | None = None, parts_dir: Path | None = None) -> DownloadResult:
    """Expand the sources, then run every entry (one engine task each; None: local);
    never lets one bad source stop the others (a name clash stops the stage first:
    StageError). Entries whose part is already written are not run again; a part with
    a failed row is dropped after the merge, so a failure is retried by the next run."""
    entries = expand_sources(params.sources, root)
    raw_dir.mkdir(parents=True, exist_ok=True)
    partial_dir = partial_dir if partial_dir is not None else root / PARTIAL_DIR
    store = PartStore.beside(raw_dir, parts_dir)
    parts = [DownloadPart(e, str(Path(root).resolve()), str(Path(partial_dir).resolve()),
                          params.download, str(store.path(e.name, fingerprint(
                              "download", e, params.download, _local_file_state(e, root), code=__name__))),
                          show_progress and (engine is None or engine.name == "local"))
             for e in entries]
    todo = [p for p in parts if not Path(p.dest).is_dir()]
    lost: dict[str, str] = {}
    bar = progress(total=len(todo), desc="download", unit="source", enabled=show_progress)
    with bar:
        for done in engine_map(engine, download_part, todo):
            bar.update()
            if not done.ok:
                lost[todo[done.index].entry.name] = done.error
    result, keep = DownloadResult(), []
    for part in parts:
        name = part.entry.name
        got = EntryResult([_lost_row(part.entry, lost[name])]) if name in lost \
            else _merge_part(part, raw_dir)
        result.add(got)
        if got.rows and all(r.status == "ok" for r in got.rows):
            keep.append(Path(part.dest))
    store.prune(keep)
    flag_missing_licences(result.rows)
    return result


def flag_missing_licences(rows: list[SourceRecord]) -> int:
    """Record, and warn about, every source without a licence; returns how many usable
    ones have none. Flagged, not refused (``pipeline.sources.licences`` says why): the warning
    names the params.yaml entry to fix, ``license_note`` keeps it in sources.parquet,
    and the export card repeats it where it matters, before redistribution."""
    flagged = 0
    for row in rows:
        row.license = normalised_licence(row.license)
        row.license_note = "" if licence_known(row.license) else missing_licence_note(row.origin)
        if row.license_note and row.status == "ok":
            flagged += 1
            log.warning("source %s has no licence: its samples will say license 'unknown' "
                        "and export cards mark it not to be redistributed; set license: on "
                        "the params.yaml sources entry %r (e.g. license: CC BY 4.0)",
                        row.name, row.origin)
    return flagged


def _merge_part(part: DownloadPart, raw_dir: Path) -> EntryResult:
    """A part's rows, its videos linked into ``raw_dir``."""
    dest = Path(part.dest)
    got: EntryResult = pickle.loads((dest / PART_RESULT).read_bytes())
    for row in got.rows:
        if row.status == "ok" and row.path:
            _publish_row_file(row, dest, raw_dir)
    return got


def _lost_row(entry: Entry, reason: str) -> SourceRecord:
    """The error row of an entry whose task the engine lost (its worker died), with the
    entry's own provenance; no part is kept, so the next run tries it again."""
    if isinstance(entry, FailedEntry):
        return run_failed(replace(entry, reason=reason))
    src = entry.source if isinstance(entry, Member) else entry
    row = _row(src, entry.name, "")
    if isinstance(entry, Member):
        row = _member_row(entry, row)
    return _fail(row, reason)


def write_outputs(result: DownloadResult, raw_dir: Path) -> None:
    """Write ``sources.parquet`` (always), ``truth.parquet`` (when there is truth) and
    ``telecine.parquet`` (when a synthetic source is telecined: which progressive frame
    each field of each encoded frame shows)."""
    atomic.write_parquet(result.table(), raw_dir / SOURCES_TABLE)
    if result.truth:
        write_truth(pd.concat(result.truth, ignore_index=True), raw_dir / TRUTH_TABLE)
    if result.telecine:
        write_telecine_truth(pd.concat(result.telecine, ignore_index=True), raw_dir / TELECINE_TABLE)
