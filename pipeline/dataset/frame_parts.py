"""The shard stage's per-source frame cache: encoded frames kept across runs.

Each source's encoded frames are kept as a part (``pipeline.engine.parts``) in
``data/cache/parts/shards/``; a re-run decodes and encodes only what no part holds, then
re-packs every tar from the parts, the same bytes as a run from scratch. A part holds
frames, not samples (sample json is built at merge time), one folder per source and
kind, ``{source}-{kind}-{key}-{set}/``: ``frames.bin`` (the frames' bytes back to back),
``index.parquet`` (frame, offset, length; sorted by frame), ``meta.json`` (width, height,
error). ``key`` (:func:`source_key`) hashes what the pixels and bytes depend on: the
source's row without its provenance columns, short side, reader, encoder, and the code
and library versions; ``set`` hashes the frame numbers held, and a changed set reuses
the part of the same key, decoding and encoding only the frames it lacks. Kinds:
``frames`` (encoded, of kept triplets), ``rgb`` (raw pixels of removed triplets the report
shows). A failed pass records ``error``; its part is not kept. More: docs/NOTES.md.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import pandas as pd
from PIL import features

from pipeline.engine.parts import PartStore, fingerprint

FRAMES_BIN, INDEX_TABLE, META_JSON = "frames.bin", "index.parquet", "meta.json"
SHARD_CODE = "pipeline.dataset.shards"  # the module that writes these parts (their code version)
KINDS = ("frames", "rgb")
# sources.parquet columns that say where a video came from, not what its frames are.
PROVENANCE = ("origin", "kind", "uri", "license", "license_note", "attribution", "split")


@lru_cache(maxsize=1)
def codec_versions() -> dict[str, Any]:
    """Versions of the libraries that decode and encode frames: an upgrade may change
    the bytes (zlib, libwebp) or the pixels (FFmpeg's scaler), so it makes new parts."""
    versions: dict[str, Any] = {"ffmpeg": av.library_versions, "zlib": features.version("zlib"),
                                "webp": features.version("webp")}
    for package in ("av", "Pillow", "decord"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = ""
    return versions


def source_key(kind: str, row: dict[str, Any], short_side: int, backend: str,
               encoder: object = None) -> str:
    """What a source's frames of ``kind`` depend on (see the module doc), as 16 hex."""
    video = {k: v for k, v in row.items() if k not in PROVENANCE}
    return fingerprint(f"shard-{kind}", video, short_side, backend, encoder, codec_versions(),
                       code=SHARD_CODE)


def pixel_row(row: dict[str, Any] | None, fallback: object) -> dict[str, Any]:
    """The sources.parquet row when there is one, else ``fallback``'s fields (a
    dataclass): a part's key always covers the file's checksum and demux count."""
    return dict(row) if row is not None else asdict(fallback)  # type: ignore[call-overload]


def set_key(frames: frozenset[int]) -> str:
    return hashlib.sha256(json.dumps(sorted(frames)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FramePart:
    """A published part: which frames it holds, their size, and how its pass ended."""

    path: Path
    offsets: dict[int, tuple[int, int]]
    size: tuple[int, int]
    error: str

    @classmethod
    def open(cls, path: Path) -> FramePart:
        index = pd.read_parquet(path / INDEX_TABLE)
        meta = json.loads((path / META_JSON).read_text())
        offsets = {int(f): (int(o), int(n)) for f, o, n in
                   zip(index["frame"], index["offset"], index["length"])}
        return cls(Path(path), offsets, (int(meta["width"]), int(meta["height"])), meta["error"])

    @property
    def frames(self) -> frozenset[int]:
        return frozenset(self.offsets)

    def read(self, fh: BinaryIO, frame: int) -> bytes:
        offset, length = self.offsets[frame]
        fh.seek(offset)
        return fh.read(length)

    def reader(self) -> BinaryIO:
        return open(self.path / FRAMES_BIN, "rb")  # the caller closes it (a with block)

    def rgb(self) -> dict[int, np.ndarray]:
        """Every frame as H x W x 3 pixels (an ``rgb`` part)."""
        shape = (self.size[1], self.size[0], 3)
        with self.reader() as fh:
            return {f: np.frombuffer(self.read(fh, f), np.uint8).reshape(shape)
                    for f in sorted(self.offsets)}


class FrameWriter:
    """Frames into a part folder being filled (a ``PartWriter``'s temporary), in any
    order; :meth:`close` writes the index and the meta."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fh = open(folder / FRAMES_BIN, "wb")  # noqa: SIM115 - closed by close()
        self.rows: list[tuple[int, int, int]] = []

    def add(self, frame: int, data: bytes) -> None:
        self.rows.append((frame, self.fh.tell(), len(data)))
        self.fh.write(data)

    def close(self, size: tuple[int, int], error: str) -> None:
        self.fh.close()
        rows = sorted(self.rows)
        pd.DataFrame({"frame": np.array([r[0] for r in rows], np.int64),
                      "offset": np.array([r[1] for r in rows], np.int64),
                      "length": np.array([r[2] for r in rows], np.int64)}).to_parquet(
            self.folder / INDEX_TABLE, index=False)
        (self.folder / META_JSON).write_text(json.dumps(
            {"width": int(size[0]), "height": int(size[1]), "error": error}, sort_keys=True))


@dataclass(frozen=True)
class FramePlan:
    """One source's frames of one kind: ``ready`` when a part holds them all, else where
    to write them (``dest``) and the part to take the frames it has from (``base``)."""

    wanted: frozenset[int]
    ready: str = ""
    dest: str = ""
    base: str = ""

    @property
    def todo(self) -> bool:
        return bool(self.dest)

    @property
    def path(self) -> Path:
        """The part the merge reads once the work is done."""
        return Path(self.ready or self.dest)


def _published(store: PartStore, prefix: str) -> list[FramePart]:
    """Parts of one source and key, whole and without error (temporaries start with ".")."""
    if not store.root.is_dir():
        return []
    found = sorted(p for p in store.root.glob(f"{prefix}-*") if p.is_dir())
    parts = [FramePart.open(p) for p in found if (p / META_JSON).is_file()]
    return [p for p in parts if not p.error]


def plan_frames(store: PartStore, source: str, kind: str, key: str, wanted: frozenset[int]
                ) -> FramePlan:
    """Reuse a part holding every wanted frame; else plan a new one on the best base."""
    prefix = f"{source}-{kind}-{key}"
    parts = _published(store, prefix)
    for part in parts:
        if wanted <= part.frames:
            return FramePlan(wanted, ready=str(part.path))
    base = max(parts, key=lambda p: len(p.frames & wanted), default=None)
    return FramePlan(wanted, dest=str(store.path(prefix, set_key(wanted))),
                     base=str(base.path) if base is not None else "")
