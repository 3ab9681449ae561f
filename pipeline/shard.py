"""shard stage: decode only the kept frames, resize, encode, write WebDataset tars.

Reads ``sources.parquet`` (where each video is, its license, its demux frame count)
and the kept rows of ``filtered.parquet``; writes ``{out}/{split}/{split}-%06d.tar``,
``manifest.parquet``, ``shards.parquet`` and one wids index per split
(``pipeline.manifest``), ``metrics/shards.json`` and the dataset report
(``pipeline.report``).

Work is per source and streaming: the needed frame indices of a source are read in
order in one pass of the video's main stream (``pipeline.video.read_frames``), each
frame is encoded once even when three triplets share it, and a triplet is written as
soon as its three frames are encoded, so memory holds only the frames of triplets
still open. Encoding costs about as much
as decoding; it runs on a thread pool (see :func:`_pool`) while the main thread
decodes.

Each source is one engine item (``pipeline.engine``, params ``engine``): a guarded
worker with ``shard.timeout`` (a decoder that hangs or crashes costs that source's
triplets, counted in ``skipped``) writes the source's samples to a part tar in
``data/cache/parts/shards/``; the parts are then copied in source order into the split
shards, byte for byte what one sequential writer would give, and removed.

Sample: key ``{source}_{scene:04d}_{f0:06d}``; members ``f0.{ext}``, ``f1.{ext}``,
``f2.{ext}`` and ``json`` (see :func:`sample_meta`). Samples are written in source then
f0 order, each split to its own writer, so the same inputs and params give the same
bytes. A source that cannot be read is recorded (``skipped`` in the metrics, a warning
in the log) and the others go on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import webdataset as wds

from pipeline import atomic
from pipeline.config import Params, ShardParams
from pipeline.engine import Engine, engine_map, make_engine
from pipeline.engine.parts import PartStore, PartWriter, fingerprint
from pipeline.guard import run_guarded
from pipeline.images import Encoder
from pipeline.progress import progress
from pipeline.stage import StageError, run_stage
from pipeline.manifest import (
    SPLITS,
    TAR_SETTINGS,
    Placement,
    RawShardSink,
    clean_output,
    shards_table,
    tar_span,
    write_tables,
)
from pipeline.report import REMOVED_SHEET, wanted_frames, write_removed_sheet, write_report
from pipeline.scan import recorded_filter
from pipeline.video import Backend, FrameRead, read_frames

log = logging.getLogger("inbetweener.shard")

SOURCES_TABLE = "sources.parquet"
FILTERED_TABLE = "filtered.parquet"
TRIPLET_COLUMNS = ("source", "scene", "d0", "d1", "d2", "f0", "f1", "f2", "pts0", "pts1",
                   "pts2", "t", "t_pts", "span", "hold0", "hold1", "hold2", "phash0", "phash1",
                   "phash2", "dhash0", "dhash1", "dhash2", "keep", "pan", "group", "split")
OPTIONAL_COLUMNS = ("motion", "motion01", "motion12")  # carried when the filter wrote them
MAX_INFLIGHT_PER_WORKER = 4  # encodes queued ahead of the decoder, per worker
# A source's part (pipeline.engine.parts): its samples, where each is, what was skipped.
PART_TAR, PART_INDEX_TABLE, PART_SKIPPED, PART_CAPTURED = (
    "samples.tar", "index.parquet", "skipped.json", "captured.parquet")
PART_INDEX = {"key": "str", "split": "str", "offset": "int64", "length": "int64",
              "sizes": "str", "license": "str", "attribution": "str", "uri": "str",
              "sha256": "str", "width": "int32", "height": "int32"}
# Imported once by the guarded workers' fork server (pipeline.guard).
PRELOAD = ("numpy", "pandas", "av", "PIL.Image", "webdataset", "pipeline.shard")


class ShardError(StageError, ValueError):
    """Inputs the stage cannot use at all (missing table or columns, duplicate keys)."""


@dataclass(frozen=True)
class SourceInfo:
    """The parts of a ``sources.parquet`` row the shard stage needs."""

    name: str
    path: Path
    codec: str
    width: int
    height: int
    frames: int
    license: str
    attribution: str
    status: str
    error: str
    uri: str = ""  # where the video came from (sources.parquet ``uri``)
    sha256: str = ""  # of the video file


@dataclass
class ShardResult:
    """Tables written, metrics, and how long the writing took."""

    manifest: pd.DataFrame
    shards: pd.DataFrame
    metrics: dict[str, Any]
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def sample_key(source: str, scene: int, f0: int) -> str:
    """``{source}_{scene:04d}_{f0:06d}``; source names never contain dots (config)."""
    return f"{source}_{int(scene):04d}_{int(f0):06d}"


def load_sources(raw_dir: Path) -> dict[str, SourceInfo]:
    """Every row of ``sources.parquet`` by name (failed ones too: their reason is kept)."""
    path = raw_dir / SOURCES_TABLE
    if not path.is_file():
        raise ShardError(f"{path}: no such table (run the download stage first)")
    df = pd.read_parquet(path)
    # Absolute: an engine task may run with another working directory.
    return {r.name: SourceInfo(r.name, (raw_dir / r.path).resolve(), r.codec, int(r.width), int(r.height),
                               int(r.frames), r.license, r.attribution, r.status, r.error,
                               r.uri, r.sha256)
            for r in df.itertuples(index=False)}


def load_kept(triplets_dir: Path) -> pd.DataFrame:
    """Kept triplets in source then f0 order, with their sample key; keys must be unique."""
    path = triplets_dir / FILTERED_TABLE
    if not path.is_file():
        raise ShardError(f"{path}: no such table (run the filter stage first)")
    df = pd.read_parquet(path)
    missing = [c for c in TRIPLET_COLUMNS if c not in df.columns]
    if missing:
        raise ShardError(f"{path}: missing columns {missing}")
    cols = list(TRIPLET_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]
    kept = df.loc[df["keep"].astype(bool), cols].drop(columns="keep")
    kept = kept.sort_values(["source", "f0", "f1", "f2"], kind="stable").reset_index(drop=True)
    kept.insert(0, "key", [sample_key(*k) for k in zip(kept["source"], kept["scene"], kept["f0"])])
    dup = kept["key"].duplicated()
    if dup.any():
        raise ShardError(f"{path}: duplicate sample keys, e.g. {kept.loc[dup, 'key'].iloc[0]}")
    return kept


def _hex(value: Any) -> str:
    return f"{int(value):016x}"


def sample_meta(row: dict[str, Any], src: SourceInfo, size: tuple[int, int],
                fmt: str) -> dict[str, Any]:
    """The ``json`` member: everything needed to trace a sample back and to train on it.

    Hashes are 16-digit hex strings: JSON readers that hold numbers as doubles would
    round a 64-bit integer. ``uri`` and ``sha256`` are the source video's origin and
    checksum (sources.parquet), so a sample alone says which file it came from.
    """
    meta = {
        "key": row["key"], "source": src.name, "license": src.license,
        "attribution": src.attribution, "uri": src.uri, "sha256": src.sha256,
        "split": row["split"], "scene": int(row["scene"]),
        "group": int(row["group"]), "frames": [int(row[f"f{k}"]) for k in range(3)],
        "drawings": [int(row[f"d{k}"]) for k in range(3)],
        "pts": [float(row[f"pts{k}"]) for k in range(3)],
        "holds": [int(row[f"hold{k}"]) for k in range(3)],
        "t": float(row["t"]), "t_pts": float(row["t_pts"]), "span": int(row["span"]),
        "phash": [_hex(row[f"phash{k}"]) for k in range(3)],
        "dhash": [_hex(row[f"dhash{k}"]) for k in range(3)],
        "pan": bool(row["pan"]), "width": size[0], "height": size[1], "format": fmt,
    }
    for name in OPTIONAL_COLUMNS:
        if name in row:
            meta[name] = None if pd.isna(row[name]) else float(row[name])
    return meta


def json_bytes(meta: dict[str, Any]) -> bytes:
    """Stable JSON: sorted keys, no spaces (part of the byte-identical guarantee)."""
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


class _Inline(Executor):
    """An executor that runs the task at once (workers=0: no threads, easier profiling)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@dataclass
class SourceJob:
    """One source's kept triplets (f0 order) and how to read and encode its frames."""

    src: SourceInfo
    rows: list[dict[str, Any]]
    short_side: int  # of the stored frames (``shard.short_side``)
    encoder: Encoder
    backend: Backend = "auto"
    # Frames of removed triplets the report shows (``pipeline.report.wanted_frames``):
    # decoded in this same pass and kept, as RGB, in ``captured`` (frame -> pixels).
    extra: frozenset[int] = frozenset()
    captured: dict[int, np.ndarray] = field(default_factory=dict)


def _check_source(job: SourceJob) -> str:
    """Why a source cannot be read at all, or ""."""
    if job.src.status != "ok":
        return f"source not usable: {job.src.error}"
    if not job.src.path.is_file():
        return "video file missing"
    return ""


def _make_sample(row: dict[str, Any], frames: dict[int, Future], job: SourceJob,
                 size: tuple[int, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest fields, tar sample) for one triplet whose frames are encoded at ``size``."""
    meta = sample_meta(row, job.src, size, job.encoder.format)
    sample: dict[str, Any] = {"__key__": row["key"]}
    for k in range(3):
        sample[f"f{k}.{job.encoder.ext}"] = frames[int(row[f"f{k}"])].result()
    sample["json"] = json_bytes(meta)
    return meta, sample


def _pop_ready(queue: deque, frames: dict[int, Future], refs: Counter, job: SourceJob,
               read: FrameRead, final: bool) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Emit the leading triplets whose frames are all encoded (all of them when final).

    Order is kept: a triplet waits for the one before it. A frame is dropped from
    memory once the last triplet that uses it has been emitted.
    """
    while queue:
        row = queue[0]
        idx = [int(row[f"f{k}"]) for k in range(3)]
        present = all(i in frames for i in idx)
        if not final and not (present and all(frames[i].done() for i in idx)):
            return
        queue.popleft()
        if present:
            yield _make_sample(row, frames, job, read.size)
        for i in idx:
            refs[i] -= 1
            if refs[i] == 0:
                frames.pop(i, None)


def source_samples(job: SourceJob, pool: Executor, skipped: Counter, inflight_limit: int = 8
                   ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Samples of one source in f0 order; unreadable triplets are counted in ``skipped``."""
    reason = _check_source(job)
    if reason:
        log.warning("%s: %d triplet(s) skipped: %s", job.src.name, len(job.rows), reason)
        skipped[reason.split(":")[0]] += len(job.rows)
        return
    rows = [r for r in job.rows if max(r["f0"], r["f1"], r["f2"]) < job.src.frames]
    if len(rows) < len(job.rows):
        log.warning("%s: %d triplet(s) past the last frame (%d)", job.src.name,
                    len(job.rows) - len(rows), job.src.frames)
        skipped["frame past the end"] += len(job.rows) - len(rows)
    refs = Counter(int(r[f"f{k}"]) for r in rows for k in range(3))
    queue, frames, pending = deque(rows), {}, deque()
    read = FrameRead(job.src.path)
    decode = recorded_filter(job.src.path, job.src.name)  # the frames analysis saw
    wanted = set(refs) | {i for i in job.extra if i < job.src.frames}
    for frame in read_frames(job.src.path, wanted, job.short_side, frames=job.src.frames,
                             codec=job.src.codec, backend=job.backend, result=read,
                             decode=decode):
        if frame.index in job.extra:
            job.captured[frame.index] = frame.rgb
        if frame.index not in refs:
            continue
        frames[frame.index] = pool.submit(job.encoder, frame.rgb)
        pending.append(frames[frame.index])
        while pending and (pending[0].done() or len(pending) > inflight_limit):
            pending.popleft().result()
        yield from _pop_ready(queue, frames, refs, job, read, final=False)
    emitted_before = len(rows) - len(queue)
    written = 0
    for item in _pop_ready(queue, frames, refs, job, read, final=True):
        written += 1
        yield item
    lost = len(rows) - emitted_before - written
    if lost:
        log.warning("%s: %d triplet(s) skipped: %s", job.src.name, lost,
                    read.error or "frames not decoded")
        skipped["decode failed"] += lost


def source_jobs(kept: pd.DataFrame, sources: dict[str, SourceInfo], params: ShardParams,
                backend: Backend, extra: Mapping[str, list[int]] | None = None
                ) -> Iterator[SourceJob]:
    """One job per source, in name order; a name missing from sources.parquet is a job too.

    ``extra``: per source, frames the report wants besides the kept ones; a source with
    only such frames (every triplet removed) gets a job without rows.
    """
    encoder = Encoder(params.format, params.png_level, params.jpg_quality)
    extra = extra or {}
    by_source = {str(n): rows.to_dict("records") for n, rows in kept.groupby("source", sort=True)}
    for name in sorted(set(by_source) | set(extra)):
        src = sources.get(name) or SourceInfo(name, Path(), "", 0, 0, 0, "unknown", "",
                                              "error", "not in sources.parquet")
        yield SourceJob(src, by_source.get(name, []), params.short_side, encoder, backend,
                        frozenset(extra.get(name, ())))


def manifest_frame(kept: pd.DataFrame, metas: list[dict[str, Any]],
                   placements: list[Placement], ext: str) -> pd.DataFrame:
    """One row per written sample: the triplet's columns (dtypes kept) plus where it is."""
    if not metas:
        return _empty_manifest(kept)
    by_key = kept.set_index("key", drop=False)
    df = by_key.loc[[m["key"] for m in metas]].reset_index(drop=True)
    df.insert(1, "shard", [p.shard for p in placements])
    df.insert(2, "shard_index", np.array([p.index for p in placements], np.int64))
    df.insert(3, "tar_offset", np.array([p.offset for p in placements], np.int64))
    df.insert(4, "tar_bytes", np.array([p.length for p in placements], np.int64))
    df.insert(df.columns.get_loc("source") + 1, "license", [m["license"] for m in metas])
    df.insert(df.columns.get_loc("license") + 1, "attribution", [m["attribution"] for m in metas])
    df.insert(df.columns.get_loc("attribution") + 1, "uri", [m["uri"] for m in metas])
    df.insert(df.columns.get_loc("uri") + 1, "sha256", [m["sha256"] for m in metas])
    df["width"] = np.array([m["width"] for m in metas], np.int32)
    df["height"] = np.array([m["height"] for m in metas], np.int32)
    df["format"] = ext
    for member in (f"f0.{ext}", f"f1.{ext}", f"f2.{ext}", "json"):
        df[f"bytes_{member.split('.')[0]}"] = np.array([p.sizes[member] for p in placements],
                                                       np.int64)
    df["bytes"] = df[["bytes_f0", "bytes_f1", "bytes_f2", "bytes_json"]].sum(axis=1)
    return df


def _empty_manifest(kept: pd.DataFrame) -> pd.DataFrame:
    """The manifest's columns with no rows (a run where nothing could be written)."""
    df = kept.iloc[:0].copy()
    extra = {"shard": object, "shard_index": "int64", "tar_offset": "int64", "tar_bytes": "int64",
             "license": object, "attribution": object, "uri": object, "sha256": object,
             "width": "int32", "height": "int32", "format": object, "bytes_f0": "int64",
             "bytes_f1": "int64", "bytes_f2": "int64", "bytes_json": "int64", "bytes": "int64"}
    for name, dtype in extra.items():
        df[name] = pd.Series(dtype=dtype)
    return df


def shard_metrics(manifest: pd.DataFrame, shards: pd.DataFrame, skipped: Counter
                  ) -> dict[str, Any]:
    """Per split and total: samples, shards, bytes; skipped triplets by reason."""
    out: dict[str, Any] = {}
    for split in SPLITS:
        part = shards[shards["split"] == split]
        out[split] = {"samples": int(part["samples"].sum()), "shards": len(part),
                      "bytes": int(part["bytes"].sum())}
    out["total"] = {k: sum(out[s][k] for s in SPLITS) for k in ("samples", "shards", "bytes")}
    out["skipped"] = {k: int(v) for k, v in sorted(skipped.items())}
    return out


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    atomic.write_bytes(path, (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode())


def _pool(workers: int | None) -> Executor:
    """Encoding threads, one per core by default; 0 encodes inline.

    Threads suffice: Pillow's encoders and PyAV's decoder and scaler release the GIL
    while they work. (A process pool measured no better on this 2-core machine and
    costs ~0.3 s to start and a pickle of every frame.)
    """
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers <= 0:
        return _Inline()
    return ThreadPoolExecutor(workers, thread_name_prefix="encode")


@dataclass(frozen=True)
class ShardPart:
    """One source's shard work as an engine item (picklable): its samples go to one
    part tar under ``dest`` (pipeline.engine.parts), merged into the shards later."""

    job: SourceJob
    dest: str
    workers: int | None  # encoding threads (None: one per core)
    timeout: float


def _part_index(meta: dict[str, Any], sample: dict[str, Any], end: int) -> dict[str, Any]:
    """Where a sample's tar blocks are in the part tar, and the manifest fields it needs."""
    sizes = {k: len(v) for k, v in sample.items() if not k.startswith("__")}
    length = tar_span(list(sizes.values()))
    return {"key": meta["key"], "split": meta["split"], "offset": end - length,
            "length": length, "sizes": json.dumps(sizes), "license": meta["license"],
            "attribution": meta["attribution"], "uri": meta["uri"], "sha256": meta["sha256"],
            "width": meta["width"],
            "height": meta["height"]}


def write_part(part: ShardPart) -> int:
    """Decode, encode and write one source's samples (f0 order) as its part folder:
    ``samples.tar``, ``index.parquet`` (one row per sample), ``skipped.json`` and the
    removed-sheet frames this pass decoded (``captured.parquet``). Runs guarded."""
    job, skipped, index = part.job, Counter(), []
    limit = MAX_INFLIGHT_PER_WORKER * max(1, part.workers or os.cpu_count() or 1)
    with PartWriter(Path(part.dest)) as tmp, _pool(part.workers) as pool:
        with open(tmp / PART_TAR, "wb") as fh:
            writer = wds.TarWriter(fh, encoder=False, **TAR_SETTINGS)
            for meta, sample in source_samples(job, pool, skipped, limit):
                writer.write(sample)
                index.append(_part_index(meta, sample, writer.tarstream.offset))
            writer.close()
        pd.DataFrame(index, columns=list(PART_INDEX)).astype(PART_INDEX).to_parquet(
            tmp / PART_INDEX_TABLE, index=False)
        (tmp / PART_SKIPPED).write_text(json.dumps(dict(sorted(skipped.items()))))
        frames = sorted(job.captured.items())
        pd.DataFrame({"frame": [f for f, _ in frames], "shape": [list(a.shape) for _, a in frames],
                      "rgb": [a.tobytes() for _, a in frames]}).to_parquet(
            tmp / PART_CAPTURED, index=False)
    return len(index)


def _write_failed_part(part: ShardPart, reason: str) -> None:
    """A source whose worker hung or crashed: its triplets are recorded as skipped."""
    log.warning("%s: %d triplet(s) skipped: %s", part.job.src.name, len(part.job.rows), reason)
    with PartWriter(Path(part.dest)) as tmp:
        (tmp / PART_TAR).write_bytes(b"")
        pd.DataFrame(columns=list(PART_INDEX)).astype(PART_INDEX).to_parquet(
            tmp / PART_INDEX_TABLE, index=False)
        (tmp / PART_SKIPPED).write_text(json.dumps({reason.split(":")[0]: len(part.job.rows)}
                                                   if part.job.rows else {}))
        pd.DataFrame({"frame": [], "shape": [], "rgb": []}).to_parquet(tmp / PART_CAPTURED,
                                                                       index=False)


def shard_source(part: ShardPart) -> str:
    """Engine task: :func:`write_part` in a guarded worker with ``shard.timeout``; a
    hang or a crash is written as a part that skips the source's triplets."""
    got = run_guarded(write_part, (part,), part.timeout, preload=PRELOAD)
    if not got.ok:
        _write_failed_part(part, got.error)
    return got.error


def part_fingerprint(job: SourceJob, row: dict[str, Any] | None) -> str:
    """What a source's samples depend on: its sources.parquet row (file sha256, decode
    filter), its kept rows (splits, groups, hashes), the frames the report wants, and
    the encoding params."""
    return fingerprint("shard", row or {}, job.rows, sorted(job.extra), job.short_side,
                       job.encoder, job.backend)


def write_samples(kept: pd.DataFrame, sources: dict[str, SourceInfo], params: ShardParams,
                  out_dir: Path, *, backend: Backend = "auto", workers: int | None = None,
                  show_progress: bool = False, extra: Mapping[str, list[int]] | None = None,
                  captured: dict[str, dict[int, np.ndarray]] | None = None,
                  engine: Engine | None = None, rows: Mapping[str, dict] | None = None,
                  parts_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Counter]:
    """Write every kept triplet's sample; returns (manifest, shards table, skipped).

    One engine task per source writes the source's part; the parts are then copied, in
    source order, into the split shards (``RawShardSink``: the bytes ``ShardSink`` would
    write). ``extra`` frames (per source) are decoded in the same pass and put in
    ``captured``. ``rows``: sources.parquet rows by name, for the parts' fingerprints.
    """
    store = PartStore.beside(out_dir, parts_dir)
    parts = [ShardPart(job, str(store.path(job.src.name, part_fingerprint(
        job, (rows or {}).get(job.src.name)))), workers, params.timeout)
        for job in source_jobs(kept, sources, params, backend, extra)]
    todo = [p for p in parts if not Path(p.dest).is_dir()]
    lost: dict[str, str] = {}
    with progress(total=sum(len(p.job.rows) for p in todo), unit="sample", desc="shard",
                  enabled=show_progress) as bar:
        for done in engine_map(engine, shard_source, todo):
            if not done.ok:
                lost[todo[done.index].job.src.name] = done.error
            bar.update(len(todo[done.index].job.rows))
    merged = merge_parts(parts, lost, params, out_dir, captured)
    store.clear()  # merged: the parts are copies of the shards' bytes (see the module doc)
    return manifest_frame(kept, merged.metas, merged.placements, params.format), \
        shards_table(merged.rows), merged.skipped


@dataclass
class _Merged:
    metas: list[dict[str, Any]] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def merge_parts(parts: list[ShardPart], lost: Mapping[str, str], params: ShardParams,
                out_dir: Path, captured: dict[str, dict[int, np.ndarray]] | None) -> _Merged:
    """Copy every part's samples into the split shards, in source then f0 order."""
    sinks = {s: RawShardSink(out_dir, s, params.maxcount, params.maxsize) for s in SPLITS}
    out = _Merged()
    try:
        for part in parts:
            name = part.job.src.name
            if name in lost:
                log.warning("%s: %d triplet(s) skipped: %s", name, len(part.job.rows), lost[name])
                out.skipped[lost[name].split(":")[0]] += len(part.job.rows)
                continue
            _copy_part(Path(part.dest), sinks, out)
            if captured is not None and part.job.extra:
                captured[name] = _read_captured(Path(part.dest) / PART_CAPTURED)
        out.rows = [row for s in SPLITS for row in sinks[s].close()]
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return out


def _copy_part(dest: Path, sinks: dict[str, RawShardSink], out: _Merged) -> None:
    index = pd.read_parquet(dest / PART_INDEX_TABLE)
    out.skipped.update(json.loads((dest / PART_SKIPPED).read_text()))
    with open(dest / PART_TAR, "rb") as fh:
        for meta in index.to_dict("records"):
            fh.seek(int(meta["offset"]))
            blocks = fh.read(int(meta["length"]))
            out.placements.append(_sink(sinks, meta).write(blocks, json.loads(meta["sizes"])))
            out.metas.append(meta)


def _read_captured(path: Path) -> dict[int, np.ndarray]:
    table = pd.read_parquet(path)
    return {int(f): np.frombuffer(rgb, np.uint8).reshape([int(v) for v in shape])
            for f, shape, rgb in zip(table["frame"], table["shape"], table["rgb"])}


def _sink(sinks: dict[str, RawShardSink], meta: dict[str, Any]) -> RawShardSink:
    if meta["split"] not in sinks:
        raise ShardError(f"{meta['key']}: unknown split {meta['split']!r} "
                         f"(expected one of {', '.join(SPLITS)})")
    return sinks[meta["split"]]


def _removed_frames(triplets_dir: Path, params: ShardParams, report_dir: Path | None
                    ) -> tuple[pd.DataFrame, dict[str, list[int]], dict[str, dict[int, np.ndarray]]]:
    """The filter table, and the frames of the removed triplets the report will show
    (none without a report): decoded in the shard pass, not in a second one."""
    if report_dir is None:
        return pd.DataFrame(), {}, {}
    removed = pd.read_parquet(triplets_dir / FILTERED_TABLE)
    return removed, wanted_frames(removed, seed=params.seed), {}


def run_shard(params: Params | ShardParams, raw_dir: Path, triplets_dir: Path, out_dir: Path,
              metrics_path: Path | None = None, report_dir: Path | None = None, *,
              backend: Backend = "auto", workers: int | None = None,
              show_progress: bool = False, engine: Engine | None = None,
              parts_dir: Path | None = None) -> ShardResult:
    """The whole stage; tests call it directly. Stale outputs are removed first (the
    parts of sources whose inputs did not change are kept and reused).

    ``engine`` runs one task per source (None: local), each writing its source's part
    in ``parts_dir`` (default ``pipeline.engine.parts.default_parts_dir(out_dir)``)."""
    shard_params = params.shard if isinstance(params, Params) else params
    raw_dir, triplets_dir, out_dir = Path(raw_dir), Path(triplets_dir), Path(out_dir)
    sources, kept = load_sources(raw_dir), load_kept(triplets_dir)
    rows = {str(r["name"]): r for r in pd.read_parquet(raw_dir / SOURCES_TABLE).to_dict("records")}
    clean_output(out_dir)
    removed, extra, captured = _removed_frames(triplets_dir, shard_params, report_dir)
    start = time.perf_counter()
    manifest, shards, skipped = write_samples(kept, sources, shard_params, out_dir,
                                              backend=backend, workers=workers,
                                              show_progress=show_progress, extra=extra,
                                              captured=captured, engine=engine, rows=rows,
                                              parts_dir=parts_dir)
    seconds = time.perf_counter() - start
    write_tables(out_dir, manifest, shards)
    metrics = shard_metrics(manifest, shards, skipped)
    if metrics_path is not None:
        write_metrics(metrics, Path(metrics_path))
    if report_dir is not None:
        write_report(manifest, out_dir, Path(report_dir), shard_params)
        write_removed_sheet(removed, lambda source, _: captured.get(source, {}),
                            Path(report_dir) / REMOVED_SHEET, seed=shard_params.seed)
    return ShardResult(manifest, shards, metrics, skipped, seconds)


def summary(result: ShardResult) -> str:
    """One line: samples per split, bytes, write speed, skipped triplets."""
    m = result.metrics
    splits = ", ".join(f"{s} {m[s]['samples']}" for s in SPLITS)
    rate = m["total"]["samples"] / result.seconds if result.seconds > 0 else 0.0
    line = (f"shard: {m['total']['samples']} samples ({splits}) in {m['total']['shards']} "
            f"shard(s), {m['total']['bytes'] / 1e6:.1f} MB, {rate:.0f} samples/s")
    if result.skipped:
        line += "; skipped " + ", ".join(f"{k}: {v}" for k, v in result.skipped.most_common(5))
    return line


def _workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding threads (default: one per core; 0: inline)")


def _main(params: Params, args: argparse.Namespace) -> int:
    with make_engine(params) as engine:
        workers = args.workers if args.workers is not None or engine.name == "local" \
            else engine.task_cpus()
        result = run_shard(params, args.raw, args.triplets, args.out, args.metrics, args.report,
                           workers=workers, show_progress=True, engine=engine)
    print(summary(result))
    if result.metrics["total"]["samples"] == 0:
        print("shard: no sample written; stopping", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    paths = {"raw": "data/raw", "triplets": "data/triplets", "out": "data/shards",
             "metrics": "metrics/shards.json", "report": "reports"}
    return run_stage("pipeline.shard", __doc__, paths, _main, argv, extra=_workers_option)


if __name__ == "__main__":
    # The imported module's main: engine tasks then name pipeline.shard's functions,
    # never __main__'s, which a Ray worker or a guarded child cannot import.
    from pipeline.shard import main as module_main

    sys.exit(module_main())
