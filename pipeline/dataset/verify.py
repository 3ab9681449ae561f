"""``inbetweener verify DIR``: is a shard folder exactly what its tables say?

Works on the shard stage's output and on exports alike. :func:`verify` checks, and
reports every problem found as (file, key, problem) rather than stopping at the first:

- every shard in ``shards.parquet`` exists with the recorded size and sha256, and no
  unlisted ``*.tar`` sits in a split folder;
- each shard's samples are exactly its manifest rows: three frames and a json, no more;
- every frame decodes (PIL) to the manifest's width and height; member sizes match;
- the json parses and names the key; the tar blocks sit at the manifest's offset;
- each split's wids index lists the same shards as ``shards.parquet``.

Tars are read in stream mode: a damaged tar is reported where it breaks, and the samples
before the damage are still checked.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from pipeline.core import atomic
from pipeline.core.progress import progress
from pipeline.dataset.manifest import (
    MANIFEST_TABLE,
    SHARDS_TABLE,
    SPLITS,
    index_name,
    read_wids_index,
    sha256_file,
    split_member,
    wids_index,
)

log = logging.getLogger("inbetweener.verify")

FRAMES = ("f0", "f1", "f2")


@dataclass(frozen=True)
class Problem:
    """One thing wrong: the file (relative to DIR), the sample key ("" if none), what."""

    file: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}\t{self.key or '-'}\t{self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    shards: int
    samples: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame] | Problem:
    for name in (MANIFEST_TABLE, SHARDS_TABLE):
        if not (root / name).is_file():
            return Problem(name, "", "missing table")
    try:
        return pd.read_parquet(root / MANIFEST_TABLE), pd.read_parquet(root / SHARDS_TABLE)
    except (OSError, ValueError) as exc:
        return Problem(MANIFEST_TABLE, "", f"unreadable table: {exc}")


def unlisted_files(root: Path, listed: set[str]) -> list[Problem]:
    """Tars in split folders that no table knows about, and leftover temp files."""
    out = []
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            rel = path.relative_to(root).as_posix()
            if path.suffix == ".tar" and rel not in listed:
                out.append(Problem(rel, "", "shard not listed in shards.parquet"))
            elif path.name.endswith(atomic.TEMP_SUFFIX):
                out.append(Problem(rel, "", "leftover temporary file (interrupted run?)"))
    return out


def check_file(root: Path, row: pd.Series) -> list[Problem]:
    """Existence, size and sha256 of one listed shard."""
    path = root / row["shard"]
    if not path.is_file():
        return [Problem(row["shard"], "", "missing shard file")]
    out = []
    size = path.stat().st_size
    if size != int(row["bytes"]):
        out.append(Problem(row["shard"], "", f"size {size} bytes, shards table says {row['bytes']}"))
    if sha256_file(path) != row["sha256"]:
        out.append(Problem(row["shard"], "", "sha256 does not match shards.parquet"))
    return out


@dataclass
class TarSample:
    """One sample as found in a tar: its members and the byte range of its blocks."""

    key: str
    members: dict[str, bytes]
    start: int
    end: int


def tar_samples(path: Path, problems: list[Problem], rel: str) -> Iterator[TarSample]:
    """Samples in tar order; a read error becomes a problem and ends the tar."""
    current: TarSample | None = None
    try:
        with tarfile.open(path, "r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, member = split_member(info.name)
                if current is None or key != current.key:
                    if current is not None:
                        yield current
                    current = TarSample(key, {}, info.offset, 0)
                current.members[member] = tar.extractfile(info).read()
                current.end = info.offset_data + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    except (tarfile.TarError, EOFError, OSError) as exc:
        problems.append(Problem(rel, current.key if current else "",
                                f"truncated or corrupt tar: {exc}"))
        return
    if current is not None:
        yield current


def check_image(data: bytes, expected: tuple[int, int]) -> str:
    """"" if the bytes decode to an image of ``expected`` (w, h), else why not."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except (OSError, ValueError, SyntaxError) as exc:
        return f"does not decode: {exc}"
    return "" if size == expected else f"size {size[0]}x{size[1]}, manifest says {expected[0]}x{expected[1]}"


def check_sample(key: str, members: dict[str, bytes], row: pd.Series) -> list[str]:
    """Problems of one sample against its manifest row."""
    ext = row["format"]
    expected = {f"{f}.{ext}" for f in FRAMES} | {"json"}
    out = [f"missing member {m}" for m in sorted(expected - members.keys())]
    out += [f"unexpected member {m}" for m in sorted(members.keys() - expected)]
    for frame in FRAMES:
        data = members.get(f"{frame}.{ext}")
        if data is None:
            continue
        why = check_image(data, (int(row["width"]), int(row["height"])))
        if why:
            out.append(f"{frame}.{ext} {why}")
        elif len(data) != int(row[f"bytes_{frame}"]):
            out.append(f"{frame}.{ext} has {len(data)} bytes, manifest says {row[f'bytes_{frame}']}")
    if "json" in members:
        out += _check_json(key, members["json"])
    return out


def _check_json(key: str, data: bytes) -> list[str]:
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"json does not parse: {exc}"]
    if not isinstance(meta, dict) or meta.get("key") != key:
        return [f"json key {meta.get('key') if isinstance(meta, dict) else None!r} is not the sample key"]
    return []


def check_samples(root: Path, shard: str, rows: pd.DataFrame) -> list[Problem]:
    """Every sample in one shard against the manifest rows that say they live there."""
    problems: list[Problem] = []
    path = root / shard
    if not path.is_file():
        return problems
    expected = rows.set_index("key")
    seen: set[str] = set()
    for found in tar_samples(path, problems, shard):
        key = found.key
        if key in seen:
            problems.append(Problem(shard, key, "duplicate sample"))
            continue
        seen.add(key)
        if key not in expected.index:
            problems.append(Problem(shard, key, "sample not in manifest"))
            continue
        row = expected.loc[key]
        problems += [Problem(shard, key, p) for p in check_sample(key, found.members, row)]
        if (found.start, found.end - found.start) != (row["tar_offset"], row["tar_bytes"]):
            problems.append(Problem(shard, key, f"blocks at {found.start}+{found.end - found.start}, "
                                    f"manifest says {row['tar_offset']}+{row['tar_bytes']}"))
    problems += [Problem(shard, k, "sample in manifest but not in shard")
                 for k in rows["key"] if k not in seen]
    return problems


def check_indexes(root: Path, shards: pd.DataFrame) -> list[Problem]:
    """Each split's wids index lists exactly the shards table's rows for that split."""
    out = []
    for split in SPLITS:
        if not (shards["split"] == split).any():
            continue
        path = root / index_name(split)
        try:
            found = read_wids_index(path)["shardlist"]
        except (OSError, ValueError) as exc:
            out.append(Problem(index_name(split), "", f"wids index unreadable: {exc}"))
            continue
        if found != wids_index(shards, split)["shardlist"]:
            out.append(Problem(index_name(split), "", "wids index disagrees with shards.parquet"))
    return out


def verify(root: str | Path, show_progress: bool = False) -> VerifyResult:
    """Check a shard folder; see the module doc for what is checked. ``show_progress``:
    samples checked so far (every member is hashed and every image decoded: about a
    minute for a few thousand samples)."""
    root = Path(root)
    tables = _tables(root)
    if isinstance(tables, Problem):
        return VerifyResult(0, 0, [tables])
    manifest, shards = tables
    problems = unlisted_files(root, set(shards["shard"]))
    for shard in sorted(set(manifest["shard"]) - set(shards["shard"])):
        problems.append(Problem(shard, "", "in the manifest but not in shards.parquet"))
    with progress(total=int(shards["samples"].sum()), desc="verify", unit="sample",
                  enabled=show_progress) as bar:
        for _, row in shards.iterrows():
            rows = manifest[manifest["shard"] == row["shard"]]
            problems += check_file(root, row)
            if len(rows) != int(row["samples"]):
                problems.append(Problem(row["shard"], "", f"shards table says {row['samples']} "
                                        f"samples, manifest has {len(rows)}"))
            problems += check_samples(root, row["shard"], rows)
            bar.update(int(row["samples"]))
    problems += check_indexes(root, shards)
    return VerifyResult(len(shards), len(manifest), problems)


def report(result: VerifyResult, root: Path) -> str:
    """The lines ``inbetweener verify`` prints: one per problem, then a summary."""
    lines = [str(p) for p in result.problems]
    verdict = "OK" if result.ok else f"{len(result.problems)} problem(s)"
    lines.append(f"verify: {result.shards} shard(s), {result.samples} sample(s) in {root}: {verdict}")
    return "\n".join(lines)
