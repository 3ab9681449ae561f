"""Shard files and their tables: the writer, the manifest, the shards table, wids indexes.

Shared by the shard stage and ``inbetweener export`` (and read by verify and the
loader), so both produce the same layout::

    DIR/manifest.parquet        one row per sample: key, split, shard, where its tar blocks
                                are (tar_offset, tar_bytes), member sizes, metadata
    DIR/shards.parquet          one row per tar: shard, split, samples, bytes, sha256
    DIR/{split}.json            wids shard index (urls relative to DIR)
    DIR/{split}/{split}-000000.tar

Same samples in the same order, same bytes (fixed tar member metadata). Each tar is
written under a temporary name, renamed when complete, and hashed while written.
``RawShardSink`` appends samples' tar blocks (:func:`sample_blocks`) as tarfile would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import webdataset as wds

from pipeline.core import atomic

log = logging.getLogger("inbetweener.manifest")

SPLITS = ("train", "val", "test")
MANIFEST_TABLE = "manifest.parquet"
SHARDS_TABLE = "shards.parquet"
# Fixed tar member metadata: byte-identical tars whoever writes them, whenever.
TAR_MTIME = 946684800  # 2000-01-01T00:00:00Z; 0 makes GNU tar warn "implausibly old"
TAR_SETTINGS: dict[str, Any] = {"user": "inbetweener", "group": "inbetweener",
                                "mode": 0o444, "mtime": TAR_MTIME}
SHARD_COLUMNS = {"shard": object, "split": object, "samples": "int64", "bytes": "int64",
                 "sha256": object}
HASH_CHUNK = 1 << 20
HASH_QUEUE = 8  # batches hashed behind the writer at most


def shard_pattern(split: str) -> str:
    """Relative name pattern of a split's shards (``%06d`` is the shard number)."""
    return f"{split}/{split}-%06d.tar"


def index_name(split: str) -> str:
    return f"{split}.json"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingFile:
    """A write-only file that hashes and counts what passes through it.

    tarfile's stream mode only calls ``write``; the sha256 of a tar is thus known the
    moment it is complete, without a second read. Hashing (~1 GB/s) would otherwise
    cost export a third of its time, so it runs on its own thread (hashlib releases the
    GIL) in 1 MiB batches, at most HASH_QUEUE batches behind the writes.
    """

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.sha = hashlib.sha256()
        self.size = 0
        self._batch: list[bytes] = []
        self._batched = 0
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self._queued: deque[Future] = deque()

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self.size += len(data)
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= HASH_CHUNK:
            self._hash_batch()
        return self.fh.write(data)

    def _hash_batch(self) -> None:
        if self._batch:
            self._queued.append(self._hasher.submit(self.sha.update, b"".join(self._batch)))
            self._batch, self._batched = [], 0
        while len(self._queued) > HASH_QUEUE:
            self._queued.popleft().result()

    def close(self) -> None:
        """Finish hashing, flush to disk before the rename makes the file visible."""
        if self.fh.closed:
            return
        self._hash_batch()
        self._hasher.shutdown(wait=True)
        self._queued.clear()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


@dataclass(frozen=True)
class Placement:
    """Where one sample went: shard (relative to DIR), position in it, member sizes,
    and the byte range of its tar blocks (headers + data + padding) in the shard."""

    shard: str
    index: int
    sizes: dict[str, int]
    offset: int
    length: int


def tar_span(sizes: list[int] | tuple[int, ...]) -> int:
    """Bytes that members of these sizes take in a USTAR tar: a header block each, data
    padded to whole blocks. Short names (ours) never need extra headers."""
    return sum(tarfile.BLOCKSIZE + -(-n // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE for n in sizes)


def sample_blocks(sample: dict[str, Any]) -> tuple[bytes, dict[str, int]]:
    """A sample's tar blocks exactly as webdataset's ``TarWriter`` writes them with
    TAR_SETTINGS (members in sorted name order, ``_``-names left out, a header each, data
    padded to whole blocks), and its member sizes: what ``RawShardSink`` appends.

    Built in one piece, not through tarfile's 16 KB Python writes: the shard stage packs
    every sample of the dataset this way on each run (``pipeline.dataset.frame_parts``), at
    about twice tarfile's speed.
    """
    key, blocks, sizes = sample["__key__"], [], {}
    for name in sorted(k for k in sample if not k.startswith("_")):
        data = sample[name]
        info = tarfile.TarInfo(f"{key}.{name}")
        info.size, info.mtime, info.mode = len(data), TAR_SETTINGS["mtime"], TAR_SETTINGS["mode"]
        info.uname, info.gname = TAR_SETTINGS["user"], TAR_SETTINGS["group"]
        blocks += [info.tobuf(tarfile.DEFAULT_FORMAT, tarfile.ENCODING, "surrogateescape"),
                   data, bytes(-len(data) % tarfile.BLOCKSIZE)]
        sizes[name] = len(data)
    return b"".join(blocks), sizes


def _publish(handle: _HashingFile, dest: Path, aborting: bool) -> dict[str, Any] | None:
    """Close a finished tar and rename it into place; on abort, delete it instead."""
    handle.close()
    temp = atomic.temp_name(dest)
    if aborting:
        temp.unlink(missing_ok=True)
        return None
    os.replace(temp, dest)
    return {"bytes": handle.size, "sha256": handle.sha.hexdigest()}


@dataclass
class ShardSink:
    """One split's shards: ``ShardWriter`` with atomic renames and a shards-table row each.

    The writer opens its first tar lazily, so a split without samples leaves no file.
    ``abort()`` (after an error) removes the unfinished tar; finished ones stay, and the
    next run cleans them (:func:`clean_output`).
    """

    out_dir: Path
    split: str
    maxcount: int
    maxsize: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    _writer: wds.ShardWriter | None = None
    _open: dict[str, _HashingFile] = field(default_factory=dict)
    _aborting: bool = False

    def write(self, sample: dict[str, Any]) -> Placement:
        """Write one sample (``__key__`` plus bytes members); say where it landed."""
        if self._writer is None:
            (self.out_dir / self.split).mkdir(parents=True, exist_ok=True)
            self._writer = wds.ShardWriter(
                str(self.out_dir / shard_pattern(self.split)), maxcount=self.maxcount,
                maxsize=self.maxsize, post=self._finish, opener=self._opener, verbose=0,
                encoder=False, **TAR_SETTINGS)
        self._writer.write(sample)
        shard = Path(self._writer.fname).relative_to(self.out_dir).as_posix()
        sizes = {k: len(v) for k, v in sample.items() if not k.startswith("__")}
        end = self._writer.tarstream.tarstream.offset  # tarfile's position in the archive
        length = tar_span(list(sizes.values()))
        return Placement(shard, self._writer.count - 1, sizes, end - length, length)

    def _opener(self, fname: str) -> _HashingFile:
        handle = _HashingFile(atomic.temp_name(Path(fname)))
        self._open[fname] = handle
        return handle

    def _finish(self, fname: str) -> None:
        """ShardWriter's ``post`` hook: close, then rename into place (or drop on abort).

        It runs before the writer resets its per-shard count, so ``count`` is this tar's.
        """
        row = _publish(self._open.pop(fname), Path(fname), self._aborting)
        if row is not None:
            self.rows.append({"shard": Path(fname).relative_to(self.out_dir).as_posix(),
                              "split": self.split, "samples": self._writer.count, **row})

    def close(self) -> list[dict[str, Any]]:
        """Finish the last tar; the shards-table rows of this split."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.rows

    def abort(self) -> None:
        """Drop the unfinished tar (called when the run fails)."""
        self._aborting = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class RawShardSink:
    """Shards assembled from samples' raw tar blocks copied from other shards (export).

    The source tars were written with TAR_SETTINGS, so a sample's blocks are exactly
    what ``TarWriter`` writes for the same members; appending them and ending the
    archive as tarfile does (two zero blocks, zero padding to a whole record) gives the
    bytes ``ShardSink`` would, with nothing parsed or re-packed. A new shard starts, as
    in ``ShardWriter``, once ``maxcount`` samples or ``maxsize`` member bytes are in.
    """

    out_dir: Path
    split: str
    maxcount: int
    maxsize: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    _handle: _HashingFile | None = None
    _dest: Path | None = None
    _number: int = 0
    _count: int = 0
    _size: int = 0

    def write(self, blocks: bytes, sizes: dict[str, int]) -> Placement:
        """Append one sample's blocks (headers + padded data of all its members)."""
        if self._handle is None or self._count >= self.maxcount or self._size >= self.maxsize:
            self._next()
        offset = self._handle.size
        self._handle.write(blocks)
        self._count += 1
        self._size += sum(sizes.values())
        shard = self._dest.relative_to(self.out_dir).as_posix()
        return Placement(shard, self._count - 1, sizes, offset, len(blocks))

    def _next(self) -> None:
        self._end()
        self._dest = self.out_dir / (shard_pattern(self.split) % self._number)
        self._dest.parent.mkdir(parents=True, exist_ok=True)
        self._handle = _HashingFile(atomic.temp_name(self._dest))
        self._number, self._count, self._size = self._number + 1, 0, 0

    def _end(self, aborting: bool = False) -> None:
        """Close the archive like tarfile does, then publish (or drop) the file."""
        if self._handle is None:
            return
        if not aborting:
            self._handle.write(bytes(2 * tarfile.BLOCKSIZE))
            self._handle.write(bytes(-self._handle.size % tarfile.RECORDSIZE))
        row = _publish(self._handle, self._dest, aborting)
        if row is not None:
            self.rows.append({"shard": self._dest.relative_to(self.out_dir).as_posix(),
                              "split": self.split, "samples": self._count, **row})
        self._handle = None

    def close(self) -> list[dict[str, Any]]:
        self._end()
        return self.rows

    def abort(self) -> None:
        self._end(aborting=True)


def clean_output(out_dir: Path, splits: tuple[str, ...] = SPLITS) -> int:
    """Remove what a previous run wrote: tables, indexes, tars and temp files.

    Only names this module writes are touched (``{split}/*.tar``, temp files, the two
    tables, ``{split}.json``), so a user's other files in ``out_dir`` survive. Tables go
    first: a run that fails later never leaves a manifest pointing at missing tars.
    """
    removed = 0
    for name in (MANIFEST_TABLE, SHARDS_TABLE, *(index_name(s) for s in splits)):
        if (out_dir / name).exists():
            (out_dir / name).unlink()
            removed += 1
    for split in splits:
        folder = out_dir / split
        if not folder.is_dir():
            continue
        for path in [*folder.glob("*.tar"), *folder.glob(f".*{atomic.TEMP_SUFFIX}")]:
            path.unlink()
            removed += 1
    return removed


def shards_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The shards table, in split then file order."""
    df = pd.DataFrame(rows, columns=list(SHARD_COLUMNS))
    order = {s: i for i, s in enumerate(SPLITS)}
    df = df.sort_values(["split", "shard"], key=lambda c: c.map(order) if c.name == "split" else c)
    return df.reset_index(drop=True).astype(SHARD_COLUMNS)


def wids_index(shards: pd.DataFrame, split: str) -> dict[str, Any]:
    """A wids shard index for one split; urls are relative to the index file's folder."""
    rows = shards[shards["split"] == split]
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": split,
        "shardlist": [{"url": r.shard, "nsamples": int(r.samples), "filesize": int(r.bytes),
                       "sha256": r.sha256} for r in rows.itertuples()],
    }


def write_tables(out_dir: Path, manifest: pd.DataFrame, shards: pd.DataFrame) -> None:
    """Write manifest, shards table and one wids index per split with samples."""
    atomic.write_parquet(manifest, out_dir / MANIFEST_TABLE)
    atomic.write_parquet(shards, out_dir / SHARDS_TABLE)
    for split in SPLITS:
        if (shards["split"] == split).any():
            text = json.dumps(wids_index(shards, split), indent=2) + "\n"
            atomic.write_bytes(out_dir / index_name(split), text.encode())


def read_manifest(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    return pd.read_parquet(Path(out_dir) / MANIFEST_TABLE)


def read_shards(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    return pd.read_parquet(Path(out_dir) / SHARDS_TABLE)


def read_wids_index(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A wids index; raises ValueError when it is not one."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("wids_version") != 1 or "shardlist" not in data:
        raise ValueError(f"{path}: not a wids shard index (wids_version 1 with a shardlist)")
    return data


def shards_for_split(shards_dir: str | os.PathLike[str], split: str) -> list[str]:
    """Shard paths of one split, in order: from its wids index when there is one (what
    the shard stage wrote), else a glob of the split's folder (a hand-made copy)."""
    shards_dir = Path(shards_dir)
    index = shards_dir / index_name(split)
    if index.is_file():
        return [str(shards_dir / s["url"]) for s in read_wids_index(index)["shardlist"]]
    return [str(p) for p in sorted((shards_dir / split).glob(f"{split}-*.tar"))]


def split_member(name: str) -> tuple[str, str]:
    """``dir/key.f0.png`` -> (``dir/key``, ``f0.png``): webdataset splits at the first dot."""
    folder, _, base = name.rpartition("/")
    key, _, member = base.partition(".")
    return (f"{folder}/{key}" if folder else key), member


def iter_tar_samples(path: str | os.PathLike[str], keys: set[str] | None = None
                     ) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {member: bytes}) for consecutive members of a tar, optionally only ``keys``.

    Members of unwanted samples are skipped without being read (random-access mode
    seeks over their data), so picking a few samples from a big shard is cheap.
    """
    current, members = None, {}
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, member = split_member(info.name)
            if keys is not None and key not in keys:
                continue
            if key != current and current is not None:
                yield current, members
                members = {}
            current = key
            members[member] = tar.extractfile(info).read()
    if current is not None:
        yield current, members
