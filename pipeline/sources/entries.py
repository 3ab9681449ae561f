"""``sources`` as users have them: folders and CSV lists become one source per video.

:func:`expand_sources` runs once, in the driver, before any work: a ``folder`` entry
becomes one :class:`Member` per matching file (sorted by relative path), a ``list``
entry one per CSV row, and every other kind passes through. What cannot be expanded
becomes a :class:`FailedEntry`, recorded by the download stage as an error row: a bad
entry never stops the others and never vanishes silently. A folder file is named
``<prefix>-<slug>`` (its relative path without suffix, each run of characters outside
``[A-Za-z0-9_-]`` made one ``-``: ``Season 1/Ep.01.mkv`` -> ``show-Season-1-Ep-01``); a
slug that is empty, too long for the 64-char limit, or shared in the folder gets an
8-hex hash of the relative path (``show-Ep-01-3fa2b1c0``). A list row is named
``<prefix>-<row name>``, validated, never rewritten. Two concrete sources with one name
stop the stage with a :class:`~pipeline.core.stage.StageError` naming both, before any
download. Every entry is picklable, so an engine can ship it. Why: docs/NOTES.md.
"""

from __future__ import annotations

import csv
import hashlib
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from pipeline.core.config import (
    SAFE_NAME,
    VIDEO_EXTS,
    FolderSource,
    ListSource,
    PageSource,
    PathSource,
    Source,
    SyntheticSource,
    UrlSource,
    format_errors,
)
from pipeline.core.stage import StageError

NAME_MAX = 64  # SAFE_NAME's limit
HASH_CHARS = 8
LIST_REQUIRED = ("url", "name")
LIST_OPTIONAL = ("license", "attribution", "sha256", "split")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # a scheme (two chars or more: not C:)


@dataclass(frozen=True)
class Member:
    """One file of a folder or one row of a list: a concrete source and its origin.

    ``source`` is what is downloaded (its name is the derived one); ``origin`` and
    ``kind`` are the params entry's name and kind, and ``uri`` what the table records.
    """

    source: PathSource | UrlSource
    origin: str
    kind: str
    uri: str

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class FailedEntry:
    """What could not be expanded; the download stage records it as an error row."""

    name: str
    origin: str
    kind: str
    uri: str
    license: str
    attribution: str
    split: str
    reason: str


Entry = SyntheticSource | PathSource | UrlSource | PageSource | Member | FailedEntry


def expand_sources(sources: list[Source], root: Path) -> list[Entry]:
    """Every params entry as concrete entries, in params order (sorted within one).

    ``root`` is the params file's folder, which relative paths start from. Raises
    StageError when two concrete sources share a name.
    """
    entries: list[Entry] = []
    for src in sources:
        if isinstance(src, FolderSource):
            entries.extend(expand_folder(src, root))
        elif isinstance(src, ListSource):
            entries.extend(expand_list(src, root))
        else:
            entries.append(src)
    check_unique(sources, entries)
    return entries


# -- folders --------------------------------------------------------------------------


def expand_folder(src: FolderSource, root: Path) -> list[Member | FailedEntry]:
    """One member per matching file; one FailedEntry when the folder gives nothing."""
    folder = root / src.path
    if not folder.is_dir():
        return [_failed(src, src.path, f"folder: no such directory: {src.path}")]
    files = folder_files(folder, src.glob)
    if not files:
        what = f"no file matches {src.glob!r}" if src.glob else "no video file"
        return [_failed(src, src.path, f"folder: {what} in {src.path}")]
    names = derive_names(src.name, files)
    members: list[Member | FailedEntry] = []
    for rel in files:
        path = posixpath.normpath(posixpath.join(Path(src.path).as_posix(), rel.as_posix()))
        concrete = PathSource(kind="path", name=names[rel], path=path, license=src.license,
                              attribution=src.attribution, split=src.split)
        members.append(Member(concrete, src.name, src.kind, path))
    return members


def folder_files(folder: Path, pattern: str | None) -> list[PurePosixPath]:
    """Files under ``folder`` matching ``pattern`` (default: known video suffixes, any
    depth), relative, hidden parts skipped, sorted by their posix path (codepoints, so
    the order is the same on every machine and locale)."""
    found = []
    for path in folder.glob(pattern or "**/*"):
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if pattern is None and rel.suffix.lower() not in VIDEO_EXTS:
            continue
        found.append(rel)
    return sorted(set(found), key=lambda p: p.as_posix())


def slug(text: str) -> str:
    """``text`` as name characters: runs outside [A-Za-z0-9_-] become one '-', trimmed."""
    out = _UNSAFE_RUN.sub("-", text)
    return re.sub(r"-{2,}", "-", out).strip("-_")


def short_hash(text: str) -> str:
    """A stable 8-hex tag of ``text`` (the relative path) to tell derived names apart."""
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def derive_names(prefix: str, files: list[PurePosixPath]) -> dict[PurePosixPath, str]:
    """``<prefix>-<slug>`` per file; hashed when empty, too long or shared in the folder.

    Every file of a shared slug is hashed, not all but the first: no file's name then
    depends on which of them sorts first.
    """
    slugs = {rel: slug(rel.with_suffix("").as_posix()) for rel in files}
    counts: dict[str, int] = {}
    for value in slugs.values():
        counts[value] = counts.get(value, 0) + 1
    names = {}
    for rel, value in slugs.items():
        plain = f"{prefix}-{value}"
        if value and counts[value] == 1 and len(plain) <= NAME_MAX:
            names[rel] = plain
        else:
            names[rel] = _hashed_name(prefix, value, rel)
    return names


def _hashed_name(prefix: str, value: str, rel: PurePosixPath) -> str:
    """``<prefix>-<slug cut to fit>-<hash>``, or ``<prefix>-<hash>`` for an empty slug."""
    tag = short_hash(rel.as_posix())
    room = NAME_MAX - len(prefix) - len(tag) - 2
    head = value[:room].rstrip("-_")
    return f"{prefix}-{head}-{tag}" if head else f"{prefix}-{tag}"


# -- lists ----------------------------------------------------------------------------


def expand_list(src: ListSource, root: Path) -> list[Member | FailedEntry]:
    """One member (or FailedEntry) per CSV row; one FailedEntry for an unusable CSV."""
    try:
        rows = list(read_list(root / src.path, src.path))
    except ListError as exc:
        return [_failed(src, src.path, f"list: {exc}")]
    if not rows:
        return [_failed(src, src.path, f"list: {src.path}: no rows")]
    return [list_row(src, line, row) for line, row in rows]


class ListError(Exception):
    """A CSV that cannot be used at all (unreadable, missing or unknown columns)."""


def read_list(path: Path, label: str) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line number, row) per CSV record; checks the header first.

    ``utf-8-sig`` reads files saved by spreadsheets (a BOM) like any other. The line
    number is the record's last physical line, as an editor shows it.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            _check_header(reader.fieldnames, label)
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ListError(f"cannot read {label}: {type(exc).__name__}: {exc}") from exc


def _check_header(fields: list[str] | None, label: str) -> None:
    """Required columns present, no unknown one (a typo like 'licence' would otherwise
    drop every row's licence silently)."""
    if not fields:
        raise ListError(f"{label}: empty file (expected a header with {', '.join(LIST_REQUIRED)})")
    have = [f.strip() for f in fields]
    missing = [c for c in LIST_REQUIRED if c not in have]
    unknown = [c for c in have if c not in LIST_REQUIRED + LIST_OPTIONAL]
    if missing:
        raise ListError(f"{label}: missing column(s) {', '.join(missing)}")
    if unknown:
        raise ListError(f"{label}: unknown column(s) {', '.join(map(repr, unknown))} "
                        f"(expected {', '.join(LIST_REQUIRED + LIST_OPTIONAL)})")
    if len(set(have)) != len(have):
        raise ListError(f"{label}: repeated column in the header")


def list_row(src: ListSource, line: int, row: dict[str | None, str | None]) -> Member | FailedEntry:
    """Validate one row with the params rules; a bad row becomes a FailedEntry."""
    values = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
    where = f"{src.path} line {line}"
    location, name = values.get("url", ""), values.get("name", "")
    wanted = f"{src.name}-{name}"
    failed_name = wanted if name and SAFE_NAME.match(wanted) else f"{src.name}-line{line}"
    if None in row:  # DictReader keeps extra fields under the key None
        return _failed(src, location, f"list: {where}: more fields than the header", failed_name)
    for column in LIST_REQUIRED:
        if not values.get(column):
            return _failed(src, location, f"list: {where}: {column}: empty", failed_name)
    try:
        concrete = _row_source(src, values)
    except ValidationError as exc:
        reason = "; ".join(format_errors(exc).splitlines())
        return _failed(src, location, f"list: {where}: {reason}", failed_name)
    uri = concrete.url if isinstance(concrete, UrlSource) else concrete.path
    return Member(concrete, src.name, src.kind, uri)


def _row_source(src: ListSource, values: dict[str, str]) -> PathSource | UrlSource:
    """The row as a url or path source; empty optional values fall back to the entry's."""
    fields: dict[str, str] = {
        "name": f"{src.name}-{values['name']}",
        "license": values.get("license") or src.license,
        "attribution": values.get("attribution") or src.attribution,
        "split": values.get("split") or src.split,
    }
    if values.get("sha256"):
        fields["sha256"] = values["sha256"]
    location = values["url"]
    if _URL_LIKE.match(location):
        return UrlSource.model_validate({"kind": "url", "url": location, **fields})
    return PathSource.model_validate({"kind": "path", "path": list_path(src.path, location),
                                      **fields})


def list_path(csv_path: str, location: str) -> str:
    """A row's local path, relative to the CSV, as a path relative to params.yaml.

    Joined lexically (never resolved) so the tables hold no checkout-specific path.
    """
    base = PurePosixPath(Path(csv_path).as_posix()).parent.as_posix()
    return posixpath.normpath(posixpath.join(base, Path(location).as_posix()))


# -- shared ---------------------------------------------------------------------------


def _failed(src: FolderSource | ListSource, uri: str, reason: str,
            name: str | None = None) -> FailedEntry:
    return FailedEntry(name=name or src.name, origin=src.name, kind=src.kind, uri=uri,
                       license=src.license, attribution=src.attribution, split=src.split,
                       reason=reason)


def _names(entry: Entry) -> list[str]:
    """The file names an entry will write (a synthetic entry writes one per clip)."""
    if isinstance(entry, FailedEntry):
        return []
    if isinstance(entry, SyntheticSource):
        return entry.clip_names()
    return [entry.name]


def _describe(index: int, src: Source, entry: Entry) -> str:
    """``sources[2] (folder 'clips': data/clips/a b.mp4)`` for a clash message."""
    where = f"sources[{index}] ({src.kind} {src.name!r}"
    if isinstance(entry, Member):
        where += f": {entry.uri}"
    return where + ")"


def check_unique(sources: list[Source], entries: list[Entry]) -> None:
    """Stop before any work when two concrete sources share a name, naming both."""
    owner = _owners(sources, entries)
    seen: dict[str, str] = {}
    for entry in entries:
        index, src = owner[id(entry)]
        for name in _names(entry):
            here = _describe(index, src, entry)
            if name in seen:
                raise StageError(f"sources: name {name!r} of {here} clashes with {seen[name]}; "
                                 "rename one (a folder or list name is the prefix)")
            seen[name] = here


def _owners(sources: list[Source], entries: list[Entry]) -> dict[int, tuple[int, Source]]:
    """Each entry's params entry (index and source), by the expansion's order."""
    owner: dict[int, tuple[int, Source]] = {}
    by_name = {src.name: (i, src) for i, src in enumerate(sources)}
    for entry in entries:
        key = entry.origin if isinstance(entry, (Member, FailedEntry)) else entry.name
        owner[id(entry)] = by_name[key]
    return owner
