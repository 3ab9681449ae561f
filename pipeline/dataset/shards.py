"""Write the kept triplets' frames into WebDataset shards: the library behind the shard stage."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core import atomic
from pipeline.core.config import ShardParams
from pipeline.core.guard import run_guarded
from pipeline.core.progress import progress
from pipeline.core.stage import StageError
from pipeline.core.tables import FILTERED_TABLE
from pipeline.dataset.frame_parts import (
    FramePart,
    FramePlan,
    FrameWriter,
    pixel_row,
    plan_frames,
    source_key,
)
from pipeline.dataset.manifest import (
    SPLITS,
    Placement,
    RawShardSink,
    clean_output,
    sample_blocks,
    shards_table,
    write_tables,
)
from pipeline.dataset.report import (
    REMOVED_SHEET,
    wanted_frames,
    write_removed_sheet,
    write_report,
)
from pipeline.engine import Engine, engine_map
from pipeline.engine.parts import PartStore, PartWriter
from pipeline.media.images import Encoder
from pipeline.media.video import Backend, FrameRead, read_frames
from pipeline.sources.record import RecordError, SourceRecord, read_records

log = logging.getLogger("inbetweener.shard")

TRIPLET_COLUMNS = ("source", "scene", "d0", "d1", "d2", "f0", "f1", "f2", "pts0", "pts1",
                   "pts2", "t", "t_pts", "span", "hold0", "hold1", "hold2", "phash0", "phash1",
                   "phash2", "dhash0", "dhash1", "dhash2", "keep", "pan", "group", "split")
OPTIONAL_COLUMNS = ("motion", "motion01", "motion12")  # carried when the filter wrote them
MAX_INFLIGHT_PER_WORKER = 4  # encodes queued ahead of the decoder, per worker
# Imported once by the guarded workers' fork server (pipeline.core.guard).
PRELOAD = ("numpy", "pandas", "av", "PIL.Image", "webdataset", "pipeline.dataset.shards")


class ShardError(StageError, ValueError):
    """Inputs the stage cannot use at all (missing table or columns, duplicate keys)."""


@dataclass
class ShardResult:
    """Tables written, metrics, and how long the writing took."""

    manifest: pd.DataFrame
    shards: pd.DataFrame
    metrics: dict[str, Any]
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    ran: list[str] = field(default_factory=list)  # sources decoded this run (the rest: cached)
    sources: int = 0  # sources with kept triplets


def sample_key(source: str, scene: int, f0: int) -> str:
    """``{source}_{scene:04d}_{f0:06d}``; source names never contain dots (config)."""
    return f"{source}_{int(scene):04d}_{int(f0):06d}"


def load_sources(raw_dir: Path) -> dict[str, SourceRecord]:
    """Every record of ``sources.parquet`` by name (failed ones too: their reason is
    kept), its path absolute: an engine task may run with another working directory."""
    return {r.name: replace(r, path=str(r.video(raw_dir))) for r in _records(raw_dir)}


def _records(raw_dir: Path) -> list[SourceRecord]:
    try:
        return read_records(raw_dir)
    except RecordError as err:
        raise ShardError(str(err)) from None


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


def sample_meta(row: dict[str, Any], src: SourceRecord, size: tuple[int, int],
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
    """One source's kept triplets (f0 order) and the frames of removed triplets the
    report shows (``pipeline.dataset.report.wanted_frames``), decoded in the same pass."""

    src: SourceRecord
    rows: list[dict[str, Any]]
    extra: frozenset[int] = frozenset()

    @property
    def readable(self) -> list[dict[str, Any]]:
        """The rows whose frames are all before the demux count (never read past it)."""
        return [r for r in self.rows if max(r["f0"], r["f1"], r["f2"]) < self.src.frames]

    @property
    def needed(self) -> frozenset[int]:
        """Frames of the readable rows: each encoded once, however many triplets share it."""
        return frozenset(int(r[f"f{k}"]) for r in self.readable for k in range(3))

    @property
    def report_frames(self) -> frozenset[int]:
        """The ``extra`` frames that exist (never read past the demux count)."""
        return frozenset(i for i in self.extra if i < self.src.frames)


def unreadable(src: SourceRecord) -> str:
    """Why a source cannot be read at all, or ""."""
    if src.status != "ok":
        return f"source not usable: {src.error}"
    if not Path(src.path).is_file():
        return "video file missing"
    return ""


def source_jobs(kept: pd.DataFrame, sources: dict[str, SourceRecord],
                extra: Mapping[str, list[int]] | None = None) -> Iterator[SourceJob]:
    """One job per source, in name order; a name missing from sources.parquet is a job too.

    ``extra``: per source, frames the report wants besides the kept ones; a source with
    only such frames (every triplet removed) gets a job without rows.
    """
    extra = extra or {}
    by_source = {str(n): rows.to_dict("records") for n, rows in kept.groupby("source", sort=True)}
    for name in sorted(set(by_source) | set(extra)):
        src = sources.get(name) or SourceRecord(name, "", "", "", "unknown", "", status="error",
                                                error="not in sources.parquet")
        yield SourceJob(src, by_source.get(name, []), frozenset(extra.get(name, ())))


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
    """One source's work as an engine item (picklable): decode the frames its parts
    lack (``pipeline.dataset.frame_parts``), encode the kept ones, publish the parts."""

    src: SourceRecord
    frames: FramePlan  # encoded frames of the kept triplets
    rgb: FramePlan  # raw frames of the removed triplets the report shows
    short_side: int
    encoder: Encoder
    backend: Backend
    workers: int | None  # encoding threads (None: one per core)
    timeout: float
    samples: int  # kept triplets of the source (the progress bar's unit)

    def plans(self) -> dict[str, FramePlan]:
        """The plans with work to do, by kind."""
        return {k: p for k, p in (("frames", self.frames), ("rgb", self.rgb)) if p.todo}


def _copy_base(plan: FramePlan, writer: FrameWriter) -> tuple[frozenset[int], tuple[int, int]]:
    """Copy the wanted frames the plan's base part holds into the new part."""
    if not plan.base:
        return frozenset(), (0, 0)
    base = FramePart.open(Path(plan.base))
    have = plan.wanted & base.frames
    with base.reader() as fh:
        for frame in sorted(have):
            writer.add(frame, base.read(fh, frame))
    return frozenset(have), base.size


def _drain(pending: deque, writer: FrameWriter, got: set[int], limit: int) -> None:
    """Write finished encodes in submission order, waiting once more than ``limit`` queue."""
    while pending and (pending[0][1].done() or len(pending) > limit):
        frame, future = pending.popleft()
        writer.add(frame, future.result())
        got.add(frame)


def _decode_pass(part: ShardPart, todo: dict[str, frozenset[int]],
                 writers: dict[str, FrameWriter]) -> tuple[FrameRead, dict[str, set[int]]]:
    """One sequential pass over the frames ``todo`` names: ``frames`` are encoded on a
    thread pool while the main thread decodes, ``rgb`` are kept as raw pixels."""
    src, read = part.src, FrameRead(Path(part.src.path))
    got: dict[str, set[int]] = {k: set() for k in todo}
    wanted = frozenset().union(*todo.values())
    if not wanted:
        return read, got
    encode, keep = todo.get("frames", frozenset()), todo.get("rgb", frozenset())
    limit = MAX_INFLIGHT_PER_WORKER * max(1, part.workers or os.cpu_count() or 1)
    pending: deque = deque()
    with _pool(part.workers) as pool:
        for frame in read_frames(src.path, wanted, part.short_side, frames=src.frames,
                                 codec=src.codec, backend=part.backend, result=read,
                                 decode=src.decode):
            if frame.index in keep:
                writers["rgb"].add(frame.index, np.ascontiguousarray(frame.rgb).tobytes())
                got["rgb"].add(frame.index)
            if frame.index in encode:
                pending.append((frame.index, pool.submit(part.encoder, frame.rgb)))
                _drain(pending, writers["frames"], got["frames"], limit)
        if encode:
            _drain(pending, writers["frames"], got["frames"], 0)
    return read, got


def write_part(part: ShardPart) -> str:
    """Decode, encode and publish what one source's parts lack, in one pass (frames a
    base part holds are copied, not decoded). Runs guarded. A part whose frames did
    not all decode records why; returns that reason ("" when every frame came)."""
    plans = part.plans()
    with ExitStack() as stack:
        writers = {k: FrameWriter(stack.enter_context(PartWriter(Path(p.dest))))
                   for k, p in plans.items()}
        based = {k: _copy_base(p, writers[k]) for k, p in plans.items()}
        todo = {k: p.wanted - based[k][0] for k, p in plans.items()}
        read, got = _decode_pass(part, todo, writers)
        errors = {k: "" if todo[k] <= got[k] else read.error or "frames not decoded" for k in plans}
        for k, writer in writers.items():
            writer.close(read.size if read.delivered else based[k][1], errors[k])
    return next((e for e in errors.values() if e), "")


def shard_source(part: ShardPart) -> str:
    """Engine task: :func:`write_part` in a guarded worker with ``shard.timeout``.
    Returns "" when the parts were written, else why not (a hang, a crash): the
    source's triplets are then skipped."""
    got = run_guarded(write_part, (part,), part.timeout, preload=PRELOAD)
    return got.error


def plan_part(job: SourceJob, store: PartStore, params: ShardParams, encoder: Encoder,
              backend: Backend, workers: int | None, row: dict[str, Any] | None) -> ShardPart:
    """Where one source's frames are, or are to be written (``pipeline.dataset.frame_parts``)."""
    video, side, name = pixel_row(row, job.src), params.short_side, job.src.name
    frames = plan_frames(store, name, "frames", source_key("frames", video, side, backend, encoder),
                         job.needed) if job.needed else FramePlan(frozenset())
    rgb = plan_frames(store, name, "rgb", source_key("rgb", video, side, backend),
                      job.report_frames) if job.report_frames else FramePlan(frozenset())
    return ShardPart(job.src, frames, rgb, side, encoder, backend, workers, params.timeout,
                     len(job.rows))


def run_parts(todo: list[ShardPart], engine: Engine | None, show_progress: bool
              ) -> dict[str, str]:
    """Run the sources with work to do; returns, by source, why one produced nothing."""
    lost: dict[str, str] = {}
    with progress(total=sum(p.samples for p in todo), unit="sample", desc="shard",
                  enabled=show_progress) as bar:
        for done in engine_map(engine, shard_source, todo):
            error = done.error or done.value
            if error:
                lost[todo[done.index].src.name] = error
            bar.update(todo[done.index].samples)
    return lost


@dataclass
class Written:
    """What the merge wrote: the samples' metas and places, the shards table's rows,
    triplets skipped by reason, the parts to keep and which sources were run."""

    metas: list[dict[str, Any]] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    keep: list[Path] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)


def write_samples(kept: pd.DataFrame, sources: dict[str, SourceRecord], params: ShardParams,
                  out_dir: Path, *, backend: Backend = "auto", workers: int | None = None,
                  show_progress: bool = False, extra: Mapping[str, list[int]] | None = None,
                  captured: dict[str, dict[int, np.ndarray]] | None = None,
                  engine: Engine | None = None, rows: Mapping[str, dict] | None = None,
                  parts_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Written]:
    """Write every kept triplet's sample; returns (manifest, shards table, what was written).

    One engine task per source whose frames no part holds yet writes them; then every
    sample is packed, in source then f0 order, from the parts into the split shards, and
    parts no longer used are pruned. ``extra`` frames (per source) are decoded in the
    same pass and put in ``captured``. ``rows``: sources.parquet rows by name (the
    parts' keys).
    """
    store = PartStore.beside(out_dir, parts_dir)
    encoder = Encoder(params.format, params.png_level, params.jpg_quality)
    jobs = list(source_jobs(kept, sources, extra))
    parts = {j.src.name: plan_part(j, store, params, encoder, backend, workers,
                                   (rows or {}).get(j.src.name))
             for j in jobs if not unreadable(j.src)}
    todo = [p for p in parts.values() if p.plans()]
    lost = run_parts(todo, engine, show_progress)
    written = merge_samples(jobs, parts, lost, params, out_dir, captured)
    written.ran = [p.src.name for p in todo]
    store.prune(written.keep)
    return manifest_frame(kept, written.metas, written.placements, params.format), \
        shards_table(written.rows), written


def merge_samples(jobs: list[SourceJob], parts: Mapping[str, ShardPart], lost: Mapping[str, str],
                  params: ShardParams, out_dir: Path,
                  captured: dict[str, dict[int, np.ndarray]] | None) -> Written:
    """Pack every source's samples from its parts into the split shards, in order."""
    sinks = {s: RawShardSink(out_dir, s, params.maxcount, params.maxsize) for s in SPLITS}
    out = Written()
    try:
        for job in jobs:
            reason = unreadable(job.src) or lost.get(job.src.name, "")
            if reason:
                _skip(out, job.src.name, len(job.rows), reason, reason.split(":")[0])
                continue
            _merge_source(job, parts[job.src.name], sinks, out, params.format, captured)
        out.rows = [row for s in SPLITS for row in sinks[s].close()]
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return out


def _skip(out: Written, name: str, count: int, why: str, key: str) -> None:
    if count:
        log.warning("%s: %d triplet(s) skipped: %s", name, count, why)
        out.skipped[key] += count


def _merge_source(job: SourceJob, part: ShardPart, sinks: dict[str, RawShardSink], out: Written,
                  fmt: str, captured: dict[str, dict[int, np.ndarray]] | None) -> None:
    """One source's samples into the sinks; its parts kept unless their pass failed."""
    name, readable = job.src.name, job.readable
    if len(readable) < len(job.rows):
        log.warning("%s: %d triplet(s) past the last frame (%d)", name,
                    len(job.rows) - len(readable), job.src.frames)
        out.skipped["frame past the end"] += len(job.rows) - len(readable)
    frames, rgb = (FramePart.open(p.path) if p.wanted else None for p in (part.frames, part.rgb))
    out.keep += [p.path for p in (frames, rgb) if p is not None and not p.error]
    if readable and frames is not None:
        missing = len(readable) - _pack(readable, job.src, frames, sinks, out, fmt)
        _skip(out, name, missing, frames.error or "frames not decoded", "decode failed")
    if captured is not None and rgb is not None:
        captured[name] = rgb.rgb()


def _pack(rows: list[dict[str, Any]], src: SourceRecord, frames: FramePart,
          sinks: dict[str, RawShardSink], out: Written, fmt: str) -> int:
    """Write the rows whose three frames the part holds; returns how many."""
    written = 0
    with frames.reader() as fh:
        for row in rows:
            index = [int(row[f"f{k}"]) for k in range(3)]
            if not all(i in frames.offsets for i in index):
                continue
            meta = sample_meta(row, src, frames.size, fmt)
            sample = {"__key__": row["key"], **{f"f{k}.{fmt}": frames.read(fh, i)
                                                for k, i in enumerate(index)},
                      "json": json_bytes(meta)}
            out.placements.append(_sink(sinks, meta).write(*sample_blocks(sample)))
            out.metas.append(meta)
            written += 1
    return written


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


def run_shard(params: ShardParams, raw_dir: Path, triplets_dir: Path, out_dir: Path,
              metrics_path: Path | None = None, report_dir: Path | None = None, *,
              backend: Backend = "auto", workers: int | None = None,
              show_progress: bool = False, engine: Engine | None = None,
              parts_dir: Path | None = None) -> ShardResult:
    """The whole stage; tests call it directly. Stale outputs are removed first (the
    frame parts of sources whose inputs did not change are kept and reused).

    ``engine`` runs one task per source with frames to encode (None: local), each
    writing its source's parts in ``parts_dir`` (default
    ``pipeline.engine.parts.default_parts_dir(out_dir)``)."""
    shard_params = params
    raw_dir, triplets_dir, out_dir = Path(raw_dir), Path(triplets_dir), Path(out_dir)
    records, kept = _records(raw_dir), load_kept(triplets_dir)
    sources = {r.name: replace(r, path=str(r.video(raw_dir))) for r in records}
    rows = {r.name: asdict(r) for r in records}  # paths relative: the parts' keys
    clean_output(out_dir)
    removed, extra, captured = _removed_frames(triplets_dir, shard_params, report_dir)
    start = time.perf_counter()
    manifest, shards, written = write_samples(kept, sources, shard_params, out_dir,
                                              backend=backend, workers=workers,
                                              show_progress=show_progress, extra=extra,
                                              captured=captured, engine=engine, rows=rows,
                                              parts_dir=parts_dir)
    skipped = written.skipped
    seconds = time.perf_counter() - start
    write_tables(out_dir, manifest, shards)
    metrics = shard_metrics(manifest, shards, skipped)
    if metrics_path is not None:
        write_metrics(metrics, Path(metrics_path))
    if report_dir is not None:
        write_report(manifest, out_dir, Path(report_dir), shard_params)
        write_removed_sheet(removed, lambda source, _: captured.get(source, {}),
                            Path(report_dir) / REMOVED_SHEET, seed=shard_params.seed)
    return ShardResult(manifest, shards, metrics, skipped, seconds, written.ran,
                       len({str(s) for s in kept["source"]}))
