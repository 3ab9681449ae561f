"""The naive-triplet control: every three consecutive frames of the training footage.

For ``train.triplets: naive`` (the curation experiment), :func:`naive_triplets` builds a
:class:`NaiveSet`: every window of three consecutive decoded frames ``(i, i+1, i+2)`` at
``t = 0.5``, nothing removed (no hold collapse, no cut, transition, static or
near-duplicate filter). Only the footage is the curated set's: a window belongs to the
split of its middle frame's scene (the filter's, from ``filtered.parquet``, or for a scene
without candidates :func:`pipeline.curation.splits.split_for` with the filter's seed and
fractions and its source's pin), so no val or test scene is trained on. Frames are
decoded once per source with the shard stage's reader and resize
(:func:`pipeline.media.video.read_frames`, short side ``shard.short_side``), so a frame
is pixel-equal to its PNG shard; an unreadable source is skipped with a logged reason.
:func:`naive_samples` streams a :class:`NaiveSet` with the contract of
:func:`vfi.training.samples.train_samples`. Details: docs/NOTES.md.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from pipeline.core.config import FilterParams
from pipeline.core.tables import (
    FILTERED_TABLE,
    SCENES_TABLE,
    SOURCES_TABLE,
    check_columns,
    source_splits,
)
from pipeline.curation.splits import SPLITS, split_for
from pipeline.media.decode_filter import NO_FILTER, DecodeFilter
from pipeline.media.video import Backend, FrameRead, read_frames
from pipeline.sources.record import RecordError, SourceRecord, records_by_name
from vfi.config import TrainParams
from vfi.errors import InputError
from vfi.flow.dis import DisFlow
from vfi.training.distributed import SINGLE, World
from vfi.training.samples import augmented

log = logging.getLogger("inbetweener.vfi.train")

NAIVE_T = 0.5
SCENE_COLUMNS = ("source", "scene", "first_frame", "last_frame")
# The splits a source's pin lets its scenes reach (pipeline.curation.splits.split_for's rule):
# a filtered.parquet that breaks it predates the pins and could leak test footage.
PIN_ALLOWS = {"auto": set(SPLITS), "train": {"train", "val"}, "test": {"test"}}


def naive_key(source: str, f0: int) -> str:
    """``{source}_naive_{f0:06d}``: no dots (webdataset), never a curated sample's key."""
    return f"{source}_naive_{int(f0):06d}"


@dataclass(frozen=True)
class NaiveSource:
    """One source's kept frames: ``frames`` (sorted frame numbers), their ``pts`` and
    ``pixels`` (len(frames) x H x W x 3 uint8, row k is frame ``frames[k]``)."""

    name: str
    frames: np.ndarray
    pts: np.ndarray
    pixels: np.ndarray


@dataclass(frozen=True)
class NaiveWindow:
    """Frames ``f0, f0+1, f0+2`` of source ``source`` (an index into
    :attr:`NaiveSet.sources`), stored at rows ``row, row+1, row+2``; ``scene`` is the
    middle frame's."""

    source: int
    row: int
    f0: int
    scene: int
    key: str


@dataclass
class NaiveSet:
    """Every naive window of one split, and the frames they use (each once)."""

    split: str
    sources: list[NaiveSource]
    windows: list[NaiveWindow]
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it gave nothing

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def frames(self) -> int:
        """Frames held in memory (shared by the windows)."""
        return sum(len(s.frames) for s in self.sources)

    def triplet(self, index: int) -> dict[str, Any]:
        """Window ``index`` as :func:`vfi.inference.triplets.to_triplet` gives a shard
        sample: float32 ``f0, f1, f2`` (3 x H x W in [0, 1]), ``t``, ``key``, ``meta``."""
        w = self.windows[index]
        src = self.sources[w.source]
        rgb = torch.from_numpy(src.pixels[w.row:w.row + 3]).permute(0, 3, 1, 2)
        f = rgb.float() / 255  # as webdataset's "torchrgb" decodes a PNG member
        height, width = src.pixels.shape[1:3]
        meta = {"key": w.key, "source": src.name, "split": self.split, "scene": w.scene,
                "frames": [w.f0, w.f0 + 1, w.f0 + 2],
                "pts": [float(p) for p in src.pts[w.row:w.row + 3]], "t": NAIVE_T,
                "width": int(width), "height": int(height), "triplets": "naive"}
        return {"f0": f[0], "f1": f[1], "f2": f[2],
                "t": torch.tensor(NAIVE_T, dtype=torch.float32), "key": w.key, "meta": meta,
                "__key__": w.key}  # webdataset's map carries it on shard samples


# ------------------------------------------------------------------ tables

def _read(path: Path, columns: tuple[str, ...], hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: no such table ({hint})")
    check_columns(path, columns)
    return pd.read_parquet(path, columns=list(columns))


def source_pins(raw_dir: Path) -> dict[str, str]:
    """Each source's split pin; a ``sources.parquet`` from before pins counts as auto."""
    path = Path(raw_dir) / SOURCES_TABLE
    if "split" not in pq.read_schema(path).names:
        log.warning("%s has no split column (written before per-source splits): every "
                    "source counts as split auto; re-run the download stage", path)
        return {}
    return source_splits(raw_dir)


def scene_splits(scenes: pd.DataFrame, filtered: pd.DataFrame, filter_params: FilterParams,
                 pins: dict[str, str]) -> dict[tuple[str, int], str]:
    """Split of every ``(source, scene)``: its candidates' split in ``filtered``, else
    :func:`pipeline.curation.splits.split_for` as the filter would give a lone scene."""
    per_scene = filtered.groupby(["source", "scene"], sort=True)["split"].unique()
    mixed = [k for k, v in per_scene.items() if len(v) != 1]
    if mixed:
        raise InputError(f"{FILTERED_TABLE}: scene {mixed[0]} has rows in several splits "
                         f"({', '.join(per_scene[mixed[0]])})")
    known = {(str(s), int(c)): str(v[0]) for (s, c), v in per_scene.items()}
    stale = [(k, v) for k, v in known.items() if v not in PIN_ALLOWS[pins.get(k[0], "auto")]]
    if stale:
        (source, scene), got = stale[0]
        raise InputError(f"{FILTERED_TABLE}: scene {scene} of {source} is in {got} but its "
                         f"source is pinned to {pins[source]} ({len(stale)} scene(s) so): "
                         "the table is older than the pins, re-run the filter stage")
    out = {}
    for source, scene in zip(scenes["source"], scenes["scene"]):
        key = (str(source), int(scene))
        out[key] = known.get(key) or split_for(key=key, seed=filter_params.seed,
                                               fractions=filter_params.split,
                                               pinned=pins.get(key[0], "auto"))
    return out


def split_windows(scenes: pd.DataFrame, splits: dict[tuple[str, int], str], split: str,
                  frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(f0, scene of f0+1) of one source's windows whose middle frame's scene is in
    ``split``: all three frames inside the analysed scenes and below ``frames``."""
    scenes = scenes.sort_values("first_frame")
    first, last = scenes["first_frame"].to_numpy(), scenes["last_frame"].to_numpy()
    ids = scenes["scene"].to_numpy()
    end = min(int(last.max()) + 1, frames)  # frames 0..end-1 exist
    middle = np.arange(1, end - 1, dtype=np.int64)
    at = np.searchsorted(first, middle, side="right") - 1
    inside = (at >= 0) & (middle <= last[np.maximum(at, 0)])
    source = str(scenes["source"].iloc[0])
    in_split = np.array([splits[(source, int(s))] == split for s in ids], bool)
    wanted = inside & in_split[np.maximum(at, 0)]
    return middle[wanted] - 1, ids[at[wanted]].astype(np.int64)


# ------------------------------------------------------------------ decoding

def decode_source(name: str, path: Path, f0: np.ndarray, scene: np.ndarray, size: int, *,
                  frames: int, codec: str, backend: Backend = "auto",
                  decode: DecodeFilter = NO_FILTER) -> tuple[NaiveSource | None, np.ndarray, np.ndarray, str]:
    """One pass over the frames the windows ``f0`` need; (source or None, the f0 and
    scene of the windows whose three frames decoded, why some or all did not or "")."""
    wanted = np.unique(np.concatenate([f0, f0 + 1, f0 + 2]))
    read = FrameRead(path)
    got_index: list[int] = []
    got_pts: list[float] = []
    pixels: np.ndarray | None = None
    for frame in read_frames(path, wanted.tolist(), size, frames=frames, codec=codec,
                             backend=backend, result=read,
                             decode=decode):  # the recorded filter: as analysis saw them
        if pixels is None:  # the size is known at the first frame
            pixels = np.empty((len(wanted), *frame.rgb.shape), np.uint8)
        pixels[len(got_index)] = frame.rgb
        got_index.append(frame.index)
        got_pts.append(frame.pts)
    if pixels is None:
        return None, f0[:0], scene[:0], read.error or "no frame decoded"
    have = np.asarray(got_index, np.int64)
    ok = np.isin(f0, have) & np.isin(f0 + 1, have) & np.isin(f0 + 2, have)
    f0, scene = f0[ok], scene[ok]
    if not len(f0):
        return None, f0, scene, read.error or "no window's three frames decoded"
    keep = np.isin(have, np.concatenate([f0, f0 + 1, f0 + 2]))
    pixels = pixels[:len(have)]
    if not keep.all():  # a partial decode: drop the frames of lost windows (a copy)
        pixels = pixels[keep]
    note = read.error if not ok.all() else ""
    return NaiveSource(name, have[keep], np.asarray(got_pts, np.float64)[keep], pixels), \
        f0, scene, note


def naive_triplets(raw_dir: Path, analysis_dir: Path, triplets_dir: Path, size: int, *,
                   filter_params: FilterParams, split: str = "train",
                   backend: Backend = "auto") -> NaiveSet:
    """Every naive window of ``split`` and its frames at short side ``size``.

    ``raw_dir``: ``sources.parquet`` and the videos; ``analysis_dir``: ``scenes.parquet``;
    ``triplets_dir``: ``filtered.parquet``; ``size``: ``shard.short_side``;
    ``filter_params``: the filter's ``seed`` and ``split`` fractions (for scenes without
    candidates). Raises ValueError when no window at all can be made.
    """
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    raw_dir, analysis_dir, triplets_dir = Path(raw_dir), Path(analysis_dir), Path(triplets_dir)
    scenes = _read(analysis_dir / SCENES_TABLE, SCENE_COLUMNS, "run the detect_cuts stage")
    filtered = _read(triplets_dir / FILTERED_TABLE, ("source", "scene", "split"),
                     "run the filter stage")
    splits = scene_splits(scenes, filtered, filter_params, source_pins(raw_dir))
    by_name = _records(raw_dir)
    out = NaiveSet(split, [], [])
    for name, mine in scenes.groupby("source", sort=True):
        name = str(name)
        src = by_name.get(name)
        reason = _unusable(src, raw_dir)
        if reason:
            out.skipped[name] = reason
            log.warning("naive %s: %s skipped: %s", split, name, reason)
            continue
        f0, scene = split_windows(mine, splits, split, src.frames)
        if not len(f0):
            log.info("naive %s: %s: no scene in %s", split, name, split)
            continue
        got, f0, scene, note = decode_source(name, src.video(raw_dir), f0, scene, size,
                                             frames=src.frames, codec=src.codec,
                                             backend=backend, decode=src.decode)
        if got is None:
            out.skipped[name] = note
            log.warning("naive %s: %s skipped: %s", split, name, note)
            continue
        _add(out, got, f0, scene)
        log.info("naive %s: %s: %d windows, %d frames at %dx%d%s", split, name, len(f0),
                 len(got.frames), got.pixels.shape[2], got.pixels.shape[1],
                 f" (some windows lost: {note})" if note else "")
    if not out.windows:
        why = "; ".join(f"{k}: {v}" for k, v in out.skipped.items()) or "no scene in it"
        raise InputError(f"no naive {split} window in {raw_dir} / {analysis_dir}: {why}")
    log.info("naive %s: %d windows, %d frames from %d source(s)", split, len(out),
             out.frames, len(out.sources))
    return out


def _records(raw_dir: Path) -> dict[str, SourceRecord]:
    try:
        return records_by_name(raw_dir)
    except RecordError as err:
        raise InputError(str(err)) from None


def _unusable(src: SourceRecord | None, raw_dir: Path) -> str:
    """Why a source cannot be decoded at all, or ""."""
    if src is None:
        return "not in sources.parquet"
    if src.status != "ok":
        return f"source not usable: {src.error}"
    if not src.video(raw_dir).is_file():
        return "video file missing"
    return ""


def _add(naive: NaiveSet, src: NaiveSource, f0: np.ndarray, scene: np.ndarray) -> None:
    index = len(naive.sources)
    naive.sources.append(src)
    rows = np.searchsorted(src.frames, f0)  # a window's three frames are stored in a row
    naive.windows.extend(NaiveWindow(index, int(r), int(f), int(s), naive_key(src.name, f))
                         for r, f, s in zip(rows, f0, scene))


# ------------------------------------------------------------------ the stream

def naive_samples(naive: NaiveSet, params: TrainParams, start: int = 0,
                  teacher: DisFlow | None = None, world: World = SINGLE
                  ) -> Iterator[dict[str, Any]]:
    """Endless augmented naive triplets, beginning at sample ``start`` of the stream.

    The contract of :func:`vfi.training.samples.train_samples`: sample ``i`` is a
    window drawn with replacement (``Random(f"{seed}:draw:{i}")``) from this rank's
    part of the windows (``windows[rank::size]``, as ranks split shards) and augmented
    with ``Random(f"{seed}:{i}")``, ``seed = train.seed + rank``; so the stream from
    ``start`` is exactly the tail of the full one. ``train.shuffle`` has nothing to do:
    draws are uniform already. With a ``teacher`` each sample also gets ``flow``.
    """
    part = range(world.rank, len(naive), world.size)
    if not part:
        raise InputError(f"rank {world.rank} of {world.size}: no naive window "
                         f"({len(naive)} in all)")
    seed = params.seed + world.rank

    def drawn() -> Iterator[dict[str, Any]]:
        for i in itertools.count(start):
            yield naive.triplet(part[random.Random(f"{seed}:draw:{i}").randrange(len(part))])

    return augmented(drawn(), params, start, teacher, seed)
